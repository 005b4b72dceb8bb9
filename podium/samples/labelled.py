"""Small labelled folders in the data set's layout, made from the bundled photographs.

Each class is one bundled photograph; its images are random crops of it (flipped, rotated
a little, colours changed, resized), so that a network can learn to tell the classes apart
from little data and nothing downloaded: what the demo trains on, and the tests' folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from podium.samples.photos import bundled_photos


def write_class_images(
    folder: Path, photo: Image.Image, count: int, rng: np.random.Generator, colour: float = 0.0
) -> None:
    """``count`` crops of ``photo`` in ``folder``; ``colour`` > 0 also varies brightness,
    contrast and saturation by up to that share."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height = photo.size
    for number in range(count):
        keep = rng.uniform(0.5, 0.9)
        w, h = int(width * keep), int(height * keep)
        left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        image = photo.crop((left, top, left + w, top + h)).rotate(float(rng.uniform(-8, 8)))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if colour:
            for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
                image = enhance(image).enhance(float(rng.uniform(1 - colour, 1 + colour)))
        size = int(rng.integers(180, 320))
        image.resize((size, int(size * h / w)), Image.BILINEAR).save(
            folder / f"{folder.name}_{number:03d}.jpg", quality=90
        )


def write_labelled_set(
    root: Path, classes: tuple[str, ...], per_split: dict[str, int], seed: int = 0, colour: float = 0.0
) -> Path:
    """root/SPLIT/<photo name>/*.jpg for each bundled photograph named in ``classes``."""
    photos = bundled_photos()
    unknown = set(classes) - set(photos)
    if unknown:
        raise ValueError(f"no bundled photograph called {', '.join(sorted(unknown))}")
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for name in classes:
            write_class_images(root / split / name, photos[name].convert("RGB"), count, rng, colour)
    return root
