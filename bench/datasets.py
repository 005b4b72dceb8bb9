"""The image folders the bench submits, built from scikit-image's bundled photographs.

Built once under the work folder and reused while their recipe is unchanged: a stamp file
records what each folder holds, so a half-written folder is never mistaken for a done one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SPORTS_SIZE = 224  # the 100-sports data set: 224x224 JPEGs, one folder per class
SPORTS_QUALITY = 90
SPORTS_CLASS_FOLDERS = 10
_STAMP = ".bench-complete"
_RECIPE_VERSION = 1


@dataclass(frozen=True)
class BenchData:
    """Folders of the run: each holds exactly the images its figure needs."""

    sports: Path  # dataset_images 224x224 JPEGs
    mixed: Path  # mixed-size, mixed-format photos
    big_job: Path  # the 2,000-image job of the fairness figure (submitted in path mode)
    small_job: Path  # the 10-image job
    single: Path  # the 1-image job
    pipeline: Path  # the stand-in's path-mode job against the decode floor (6,000, as issue 20 measured)


def build_bench_data(
    root: Path,
    dataset_images: int,
    mixed_images: int,
    big_job_images: int,
    small_job_images: int,
    pipeline_images: int,
):
    """Write (or reuse) every folder of the run under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return BenchData(
        sports=cached_folder(root / f"sports224-{dataset_images}", ("sports", dataset_images, 1), _sports_writer(1)),
        mixed=cached_folder(root / f"mixed-{mixed_images}", ("mixed", mixed_images, 2), _mixed_writer(2)),
        big_job=cached_folder(root / f"big-{big_job_images}", ("sports", big_job_images, 3), _sports_writer(3)),
        small_job=cached_folder(root / f"small-{small_job_images}", ("sports", small_job_images, 4), _sports_writer(4)),
        single=cached_folder(root / "single-1", ("sports", 1, 5), _sports_writer(5)),
        pipeline=cached_folder(root / f"pipeline-{pipeline_images}", ("sports", pipeline_images, 6), _sports_writer(6)),
    )


def cached_folder(folder: Path, recipe: tuple, write) -> Path:
    """``folder`` as ``write(folder, recipe[1])`` makes it, reused while the recipe is the same."""
    stamp = folder / _STAMP
    wanted = json.dumps([_RECIPE_VERSION, *recipe])
    if stamp.exists() and stamp.read_text() == wanted:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write(folder, recipe[1])
    stamp.write_text(wanted)
    return folder


def _sports_writer(seed: int):
    return lambda folder, count: write_sports_like_set(folder, count, seed)


def _mixed_writer(seed: int):
    def write(folder: Path, count: int) -> None:
        from podium.samples import write_photo_folder  # imports scikit-image

        write_photo_folder(folder, count=count, seed=seed)

    return write


def write_sports_like_set(dest: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` 224x224 RGB JPEGs (quality 90) in class folders, like the 100-sports set.

    Each is a random crop of a bundled photograph (40–100 % of each side, so the aspect
    ratio changes as the data set's squashed frames do), resized to 224x224.
    """
    from podium.samples import bundled_photos  # imports scikit-image

    rng = np.random.default_rng(seed)
    photos = [image.convert("RGB") for image in bundled_photos().values()]
    written = []
    for i in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        width, height = photo.size
        crop_w = max(1, int(width * rng.uniform(0.4, 1.0)))
        crop_h = max(1, int(height * rng.uniform(0.4, 1.0)))
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        crop = photo.crop((left, top, left + crop_w, top + crop_h)).resize((SPORTS_SIZE, SPORTS_SIZE), Image.BILINEAR)
        folder = dest / f"class_{i % SPORTS_CLASS_FOLDERS:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.jpg"
        crop.save(path, "JPEG", quality=SPORTS_QUALITY)
        written.append(path)
    return written
