"""Small labelled folders for the tests (podium.samples.labelled makes them): ``mislabel`` moves a share of the images into another class's folder, so that an
evaluation's accuracy is not 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from export.labels import DEFAULT_LABELS, read_labels
from podium.samples import bundled_photos
from podium.samples.labelled import write_class_images, write_labelled_set

CLASS_PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle", "rocket", "immunohistochemistry")


def make_data_set(root: Path, classes: int = 3, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """root/train|valid|test/<class>/*.jpg; classes named after their photographs (sorted = index order)."""
    per_split = per_split or {"train": 12, "valid": 6, "test": 6}
    return write_labelled_set(root, CLASS_PHOTOS[:classes], per_split, seed)


def mislabel(folder: Path, share: float, seed: int = 0) -> list[tuple[str, str, str]]:
    """Move ``share`` of the images of ``folder`` (one sub-folder per class) into another class's
    folder; returns (new relative path, true class, folder class) of each one moved."""
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images = sorted(folder.rglob("*.jpg"))
    moved = []
    for path in rng.choice(images, size=max(1, round(share * len(images))), replace=False):
        true = path.parent.name
        wrong = classes[(classes.index(true) + 1 + int(rng.integers(len(classes) - 1))) % len(classes)]
        target = folder / wrong / f"moved_{path.name}"
        shutil.move(path, target)
        moved.append((target.relative_to(folder).as_posix(), true, wrong))
    return moved


def labelled_for_the_fitted_checkpoint(root: Path, per_class: int = 10) -> Path:
    """Crops of four bundled photographs in folders named after the class the fitted
    checkpoint (tests/support/reference.fit_checkpoint) learned for each photograph."""
    photos = bundled_photos()
    names = list(photos)
    fitted = np.linspace(0, 99, num=len(names)).round().astype(int) % 100
    labels = read_labels(DEFAULT_LABELS)
    rng = np.random.default_rng(3)
    for position in (0, 3, 5, 9):
        write_class_images(root / labels[fitted[position]], photos[names[position]].convert("RGB"), per_class, rng)
    return root
