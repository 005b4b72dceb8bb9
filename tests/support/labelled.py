"""Small labelled folders in the data set's layout, made from photographs bundled with scikit-image.

Each class is one bundled photograph; its images are random crops of it (flipped,
rotated a little, resized), so that a network can tell the classes apart from little
data. ``mislabel`` moves a share of the images into another class's folder, so that an
evaluation's accuracy is not 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from export.labels import DEFAULT_LABELS, read_labels
from samples import bundled_photos

CLASS_PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle", "rocket", "immunohistochemistry")


def write_class_images(folder: Path, photo: Image.Image, count: int, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    width, height = photo.size
    for number in range(count):
        keep = rng.uniform(0.5, 0.9)
        w, h = int(width * keep), int(height * keep)
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        image = photo.crop((left, top, left + w, top + h)).rotate(float(rng.uniform(-8, 8)))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        size = int(rng.integers(180, 320))
        image.resize((size, int(size * h / w)), Image.BILINEAR).save(
            folder / f"{folder.name}_{number:03d}.jpg", quality=90
        )


def make_data_set(root: Path, classes: int = 3, per_split: dict[str, int] | None = None, seed: int = 0) -> Path:
    """root/train|valid|test/<class>/*.jpg; classes named after their photographs (sorted = index order)."""
    per_split = per_split or {"train": 12, "valid": 6, "test": 6}
    photos = bundled_photos()
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for name in CLASS_PHOTOS[:classes]:
            write_class_images(root / split / name, photos[name].convert("RGB"), count, rng)
    return root


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
