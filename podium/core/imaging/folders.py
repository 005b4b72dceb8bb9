"""Folders of images, decoded and preprocessed exactly as serving does.

What the export's checks, INT8 calibration, the engine gate and evaluation read: every
non-hidden file under a folder (``jobs.walk_files``, the rule a job uses), decodable
images kept, the others skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from podium.core.errors import InvalidArgument, NotFound
from podium.core.imaging.decode import ImageDecodeError, decode_rgb
from podium.core.imaging.transform import PreprocessSpec, preprocess
from podium.core.jobs import walk_files


@dataclass(frozen=True)
class ImageSet:
    """Names (paths relative to the folder) and their uint8 [N, crop, crop, 3] pixels."""

    names: tuple[str, ...]
    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def of(cls, items: list[tuple[str, np.ndarray]]) -> ImageSet:
        return cls(tuple(name for name, _ in items), np.stack([pixels for _, pixels in items]))


def image_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (nested too), sorted by path (component-wise)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"image folder {folder} does not exist or is not a folder")
    return sorted(folder / rel for rel in walk_files(folder))


def decoded_images(
    folder: Path, spec: PreprocessSpec, files: list[Path] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """(relative path, preprocessed pixels) of each decodable image; other files are skipped."""
    folder = Path(folder)
    for path in image_files(folder) if files is None else files:
        try:
            pixels = preprocess(decode_rgb(path.read_bytes()), spec)
        except (ImageDecodeError, OSError):
            continue  # not an image: a sample of images may skip it
        yield path.relative_to(folder).as_posix(), pixels


def folder_image_set(folder: Path, spec: PreprocessSpec, limit: int, *, spread: bool = False) -> ImageSet:
    """Up to ``limit`` decodable images of ``folder``: the first ones in sorted order, or,
    with ``spread``, picks spread over all files first (one folder per class: every class)."""
    files = image_files(folder)
    if spread:
        step = max(1, len(files) // limit)
        files = files[::step] + [p for i, p in enumerate(files) if i % step]
    images = []
    for item in decoded_images(folder, spec, files):
        images.append(item)
        if len(images) == limit:
            break
    if not images:
        raise InvalidArgument(f"no decodable images in {folder}; pass a folder of JPEG/PNG photographs")
    return ImageSet.of(images)


def class_folders(dataset_dir: Path) -> list[str]:
    """Class names of an image dataset as torchvision's ImageFolder finds them, and so as the
    seeds' training numbered them: the sorted names of the folder's sub-folders.

    The same rule as ``torchvision.datasets.folder.find_classes`` (a test holds them
    together), written out so that this needs no torchvision: every directory entry,
    hidden ones included, sorted by name."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise NotFound(f"dataset folder {dataset_dir} does not exist or is not a folder")
    with os.scandir(dataset_dir) as entries:
        classes = sorted(entry.name for entry in entries if entry.is_dir())
    if not classes:
        raise InvalidArgument(
            f"{dataset_dir} has no class sub-folders; expected DIR/<class>/<image> as for torchvision's ImageFolder"
        )
    return classes
