"""Labelled image folders for training: the data set's layout, classes as ImageFolder numbers them.

``DATA_DIR/train/<class>/*``, ``DATA_DIR/valid/<class>/*`` and an optional ``DATA_DIR/test``.
Class index = position in the sorted names of train/'s sub-folders, as torchvision's
ImageFolder (and so the seeds' training) numbers them. Images are decoded as Podium serves
them (EXIF orientation, 16-bit scaled, RGB). Evaluation sees exactly the served transform
(the network's: Resize 256, CenterCrop 224, bilinear for ResNet50; bicubic for EfficientNet);
training sees the augmentation of the recipe at the network's crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from export.architectures import architecture
from podium.core.errors import InvalidArgument, NotFound
from podium.core.imaging import ImageDecodeError, PreprocessSpec, class_folders, decode_rgb, image_files, preprocess
from podium.core.modelmeta import IMAGENET_MEAN, IMAGENET_STD

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    name: str
    samples: list[tuple[Path, int]]

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class DataSet:
    root: Path
    classes: list[str]
    train: Split
    valid: Split
    test: Split | None


def find_data_set(root: Path) -> DataSet:
    """The splits under ``root``; InvalidArgument with what is wrong when it is not the layout."""
    root = Path(root)
    if not (root / "train").is_dir() or not (root / "valid").is_dir():
        raise NotFound(
            f"{root} has no train/ and valid/ folders; expected DATA_DIR/train/<class>/..., "
            "DATA_DIR/valid/<class>/... (and optionally DATA_DIR/test/<class>/...)"
        )
    classes = class_folders(root / "train")
    splits = {name: _split(root / name, name, classes) for name in SPLITS if (root / name).is_dir()}
    for name in ("train", "valid"):
        if not splits[name].samples:
            raise InvalidArgument(f"{root / name} holds no images")
    return DataSet(root, classes, splits["train"], splits["valid"], splits.get("test"))


def _split(folder: Path, name: str, classes: list[str]) -> Split:
    index = {label: number for number, label in enumerate(classes)}
    unknown = sorted(set(class_folders(folder)) - set(index))
    if unknown:
        raise InvalidArgument(f"{folder} has classes that train/ has not: {', '.join(unknown[:10])}")
    samples = [(path, index[path.relative_to(folder).parts[0]]) for path in image_files(folder)]
    return Split(name, [(path, label) for path, label in samples if len(path.relative_to(folder).parts) > 1])


def transform_of(arch: str) -> PreprocessSpec:
    """The transform the export will give ``arch`` by default: what validation sees."""
    return architecture(arch).transform()


def train_transform(spec: PreprocessSpec) -> v2.Compose:
    """The recipe's augmentation: RandomResizedCrop to the crop, rotation ±10°, flips, colour jitter 0.2."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(spec.crop, interpolation=v2.InterpolationMode(spec.interpolation), antialias=True),
            v2.RandomRotation(10),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def normalised(pixels) -> torch.Tensor:
    """uint8 HWC (the served model's input) -> the normalised CHW tensor the network trains on."""
    tensor = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div_(255)
    return v2.functional.normalize(tensor, IMAGENET_MEAN, IMAGENET_STD)


class ImageDataset(Dataset):
    """A split's images; ``augment`` picks the training transform, else the served one."""

    def __init__(self, split: Split, augment: bool, spec: PreprocessSpec | None = None) -> None:
        self.split = split
        self.augment = augment
        self.spec = spec or PreprocessSpec()
        self._transform = train_transform(self.spec) if augment else None

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int]:
        path, label = self.split.samples[position]
        try:
            image = decode_rgb(path.read_bytes())
        except (ImageDecodeError, OSError) as exc:
            raise InvalidArgument(f"{path}: {exc}", hint="remove or replace the file, then train again") from None
        if self._transform is not None:
            return self._transform(image), label
        return normalised(preprocess(image, self.spec)), label
