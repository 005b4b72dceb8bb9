"""The serving transform, identical to torchvision's eval ``Resize(R)`` + ``CenterCrop(C)``.

Both operate on a PIL image exactly as torchvision's functional API does for PIL inputs,
so that a model served here sees the pixels it saw in evaluation. Normalisation (mean/std)
is not here: it is part of the exported model graph, which takes uint8 pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

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


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The size ``torchvision.transforms.Resize(size)`` gives a width x height image."""
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return width, height
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def resize_shorter(image: Image.Image, size: int, interpolation: str = DEFAULT_INTERPOLATION) -> Image.Image:
    """Resize so that the shorter side is ``size``, as ``torchvision.transforms.Resize(size)``
    with ``interpolation`` (antialiased, as torchvision always is for PIL images)."""
    new_size = resized_size(*image.size, size)
    if new_size == image.size:
        return image
    return image.resize(new_size, INTERPOLATIONS[interpolation])


def resize_and_crop(
    image: Image.Image, size: int, crop: int, interpolation: str = DEFAULT_INTERPOLATION
) -> Image.Image:
    """``center_crop(resize_shorter(image, size, interpolation), crop)``, pixel for pixel, computing
    only the crop where that is exact: Pillow resamples the crop's box of the source straight
    to crop x crop (a 224x224 photo: ~20 % less work, and no crop copy).

    Pillow places each output pixel's filter at ``box_start + (i + 0.5) * scale``; the two-step
    way at ``(left + i + 0.5) * scale``. They are the same floating-point numbers when the
    scale (source over resized side) is a fraction with a power-of-two denominator (224 to
    256, 512 to 256...): every product and sum is then exact, and so are the filter weights.
    Pillow rounds to 8 bits between its two passes, and for a non-square image the box way
    came out as if the passes ran in the other order (one level off in some pixels, measured
    with Pillow 13); squares came out identical (6,000 photos, random squares of 96-2,048
    pixels, both filters, RGB and grey). So squares only; anything else takes the two steps."""
    box = _exact_crop_box(*image.size, size, crop)
    if box is None:
        return center_crop(resize_shorter(image, size, interpolation), crop)
    return image.resize((crop, crop), INTERPOLATIONS[interpolation], box=box)


def resize_and_crop_drafted(
    image: Image.Image,
    full_size: tuple[int, int],
    scale: int,
    size: int,
    crop: int,
    interpolation: str = DEFAULT_INTERPOLATION,
) -> Image.Image:
    """``resize_and_crop`` of a ``full_size`` photo that libjpeg decoded at 1/``scale`` (1: not
    drafted, and ``resize_and_crop`` itself): the crop's box is found in the full-size photo's
    coordinates and resampled from the drafted pixels. Resizing the drafted image instead shifts the crop by up to a drafted pixel (its
    size is rounded up, and so are the resized size and the crop's offset): some pixels of
    the bench's photos came out 60 grey levels off."""
    box = crop_box(*full_size, size, crop) if scale > 1 else None
    if box is None:  # not drafted (the exact way, to the bit), or torchvision pads
        return resize_and_crop(image, size, crop, interpolation)
    return image.resize((crop, crop), INTERPOLATIONS[interpolation], box=tuple(side / scale for side in box))


def crop_box(width: int, height: int, size: int, crop: int) -> tuple[float, float, float, float] | None:
    """The part of a width x height image that ``resize_and_crop`` shows, in its coordinates
    (None where the resized image is smaller than the crop: torchvision pads it)."""
    new_w, new_h = resized_size(width, height, size)
    if min(new_w, new_h) < crop:
        return None
    scale_x, scale_y = width / new_w, height / new_h
    left, top = round((new_w - crop) / 2.0), round((new_h - crop) / 2.0)  # center_crop's offsets
    return (left * scale_x, top * scale_y, (left + crop) * scale_x, (top + crop) * scale_y)


@functools.lru_cache(maxsize=256)  # a pure function of the sizes: photos of a set share a few
def _exact_crop_box(width: int, height: int, size: int, crop: int) -> tuple[float, ...] | None:
    """The source box ``resize_and_crop`` resamples, or None where that would not be exact."""
    new_w = resized_size(width, height, size)[0]
    scale = Fraction(width, new_w)
    if width != height or new_w == width or new_w < crop or not _dyadic(scale):
        return None
    start = round((new_w - crop) / 2.0)  # center_crop's offset, the same on both axes
    first, last = start * scale, (start + crop) * scale
    if not all(_single_precision(value) for value in (first, last, last - first)):  # Pillow's box is a C float
        return None
    return (float(first), float(first), float(last), float(last))


def _single_precision(value: Fraction) -> bool:
    return Fraction(float(np.float32(float(value)))) == value


def _dyadic(value: Fraction) -> bool:
    # A power-of-two denominator, small enough that products with pixel positions stay exact.
    return value.denominator & (value.denominator - 1) == 0 and value.denominator <= 2**20 and value < 2**20


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
    cropped = resize_and_crop(image, spec.resize, spec.crop, spec.interpolation)
    return np.asarray(cropped if cropped.mode == "RGB" else cropped.convert("RGB"), dtype=np.uint8)
