"""INT8 calibration images, preprocessed exactly as serving does, and the part held out.

``split_calibration_folder`` divides a folder into a calibration part and a held-out part
(every ``holdout_every``-th decodable image, in sorted path order), so that the INT8
model's fidelity is measured on images the quantiser never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.errors import ExportError
from podium.core.imaging import ImageSet, PreprocessSpec, decoded_images

HOLDOUT_EVERY = 5
MAX_CALIBRATION_IMAGES = 400  # ORT's MinMax ranges settle after a few hundred images
MAX_HELD_OUT_IMAGES = 200
MIN_CALIBRATION_IMAGES = 16
MIN_HELD_OUT_IMAGES = 4


@dataclass(frozen=True)
class CalibrationSplit:
    calibration: ImageSet
    held_out: ImageSet


def split_calibration_folder(
    folder: Path,
    spec: PreprocessSpec,
    *,
    holdout_every: int = HOLDOUT_EVERY,
    max_calibration: int = MAX_CALIBRATION_IMAGES,
    max_held_out: int = MAX_HELD_OUT_IMAGES,
) -> CalibrationSplit:
    """Every ``holdout_every``-th image held out for fidelity, the others for calibration."""
    calibration: list[tuple[str, np.ndarray]] = []
    held_out: list[tuple[str, np.ndarray]] = []
    for index, item in enumerate(decoded_images(folder, spec)):
        part, limit = (held_out, max_held_out) if index % holdout_every == 0 else (calibration, max_calibration)
        if len(part) < limit:
            part.append(item)
        if len(calibration) >= max_calibration and len(held_out) >= max_held_out:
            break
    if len(calibration) < MIN_CALIBRATION_IMAGES or len(held_out) < MIN_HELD_OUT_IMAGES:
        raise ExportError(
            f"{folder} holds {len(calibration) + len(held_out)} decodable images; INT8 calibration needs at least "
            f"{MIN_CALIBRATION_IMAGES + MIN_HELD_OUT_IMAGES} (every {holdout_every}th is held out to check the "
            "result), a few hundred photographs like those served for a good calibration"
        )
    return CalibrationSplit(ImageSet.of(calibration), ImageSet.of(held_out))
