"""The serving transform, identical to torchvision's eval ``Resize(R)`` + ``CenterCrop(C)``.

Both operate on a PIL image exactly as torchvision's functional API does for PIL inputs,
so that a model served here sees the pixels it saw in evaluation. Normalisation (mean/std)
is not here: it is part of the exported model graph, which takes uint8 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

DEFAULT_RESIZE = 256
DEFAULT_CROP = 224
DEFAULT_INTERPOLATION = "bilinear"
# torchvision's InterpolationMode values -> Pillow's filters (what torchvision itself uses for PIL images).
INTERPOLATIONS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


@dataclass(frozen=True)
class PreprocessSpec:
    """Preprocessing parameters, as recorded in the exported model's metadata."""

    resize: int = DEFAULT_RESIZE
    crop: int = DEFAULT_CROP
    interpolation: str = DEFAULT_INTERPOLATION
    # torchvision's Grayscale first (PIL's convert("L")), then resize and crop; the grey
    # pixels are sent in all three channels.
    grayscale: bool = False

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            known = " or ".join(INTERPOLATIONS)
            raise ValueError(f"interpolation {self.interpolation!r} is not supported; use {known}")


def resize_shorter(image: Image.Image, size: int, interpolation: str = DEFAULT_INTERPOLATION) -> Image.Image:
    """Resize so that the shorter side is ``size``, as ``torchvision.transforms.Resize(size)``
    with ``interpolation`` (antialiased, as torchvision always is for PIL images)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return image
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return image.resize((new_w, new_h), INTERPOLATIONS[interpolation])


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Crop the centre ``size`` x ``size``, as ``torchvision.transforms.CenterCrop(size)``."""
    width, height = image.size
    if width < size or height < size:
        # torchvision pads with zeros before cropping; after resize_shorter this cannot happen.
        padded = Image.new(image.mode, (max(width, size), max(height, size)))
        padded.paste(image, (max(size - width, 0) // 2, max(size - height, 0) // 2))
        image, (width, height) = padded, padded.size
    top = round((height - size) / 2.0)
    left = round((width - size) / 2.0)
    return image.crop((left, top, left + size, top + size))


def preprocess(image: Image.Image, spec: PreprocessSpec = PreprocessSpec()) -> np.ndarray:
    """RGB PIL image -> uint8 array of shape (crop, crop, 3), the model's input layout."""
    if spec.grayscale and image.mode != "L":
        image = image.convert("L")
    cropped = center_crop(resize_shorter(image, spec.resize, spec.interpolation), spec.crop)
    return np.asarray(cropped if cropped.mode == "RGB" else cropped.convert("RGB"), dtype=np.uint8)
