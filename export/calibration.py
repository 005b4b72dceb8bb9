"""Images for INT8 calibration and for fidelity checks, preprocessed exactly as serving does.

``split_calibration_folder`` divides a folder into a calibration part and a held-out part
(every ``holdout_every``-th decodable image, in sorted path order), so that the INT8
model's fidelity is measured on images the quantiser never saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.errors import ExportError
from imaging import ImageDecodeError, PreprocessSpec, decode_rgb, preprocess

HOLDOUT_EVERY = 5
MAX_CALIBRATION_IMAGES = 400  # ORT's MinMax ranges settle after a few hundred images
MAX_HELD_OUT_IMAGES = 200
MIN_CALIBRATION_IMAGES = 16
MIN_HELD_OUT_IMAGES = 4


@dataclass(frozen=True)
class ImageSet:
    """Names (paths relative to the folder) and their uint8 [N, crop, crop, 3] pixels."""

    names: tuple[str, ...]
    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class CalibrationSplit:
    calibration: ImageSet
    held_out: ImageSet


def image_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (nested too), sorted by relative path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"image folder {folder} does not exist or is not a folder")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def decoded_images(folder: Path, spec: PreprocessSpec) -> Iterator[tuple[str, np.ndarray]]:
    """(relative path, preprocessed pixels) for each decodable image; other files are skipped."""
    folder = Path(folder)
    for path in image_files(folder):
        try:
            pixels = preprocess(decode_rgb(path.read_bytes()), spec)
        except (ImageDecodeError, OSError):
            continue  # not an image: calibration may skip it
        yield path.relative_to(folder).as_posix(), pixels


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
    return CalibrationSplit(_image_set(calibration), _image_set(held_out))


def folder_image_set(folder: Path, spec: PreprocessSpec, limit: int) -> ImageSet:
    """Up to ``limit`` decodable images of ``folder`` in sorted order."""
    images = []
    for item in decoded_images(folder, spec):
        images.append(item)
        if len(images) == limit:
            break
    if not images:
        raise ExportError(f"no decodable images in {folder}; pass a folder of JPEG/PNG photographs")
    return _image_set(images)


def _image_set(items: list[tuple[str, np.ndarray]]) -> ImageSet:
    return ImageSet(tuple(name for name, _ in items), np.stack([pixels for _, pixels in items]))
