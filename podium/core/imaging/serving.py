"""The serving path of one image: encoded bytes -> the model's uint8 input, within a memory budget.

``exact`` decodes every pixel and gives what torchvision's eval transform gives, to the
bit. ``fast`` lets libjpeg decode a large JPEG at a reduced DCT scale (1/2, 1/4 or 1/8;
Pillow's ``draft``), the smallest whose shorter side is still ``FAST_MIN_CROP_MULTIPLE``
times the crop, and then resamples the crop's box, found in the full-size photo's
coordinates, antialiased as exact does: a 24 MP photo decodes in a third of the time and
a tenth of the memory, and the answers move by less than the gate in ``make bench``
allows. Other formats, and JPEGs already small, decode exactly in both modes.

Decoding a camera photo costs hundreds of MB for a moment. ``DecodeBudget`` bounds what
one process's concurrent decodes may hold at once: a large decode waits for room instead
of pushing the worker over its memory limit.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from podium.core.imaging.decode import DEFAULT_MAX_PIXELS, GREY, SIXTEEN_BIT_MODES, finish_decoding, open_image, to_rgb
from podium.core.imaging.transform import PreprocessSpec, resize_and_crop_drafted

# Pillow keeps RGB as 4 bytes a pixel; what a decoded mode costs while it is converted.
_BYTES_PER_PIXEL = {"1": 1, GREY: 1, "P": 5, "RGB": 4, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "LA": 8, "F": 5}
_SIXTEEN_BIT_BYTES_PER_PIXEL = 3  # the 16-bit pixels, then their 8-bit copy
_OTHER_BYTES_PER_PIXEL = 8
DCT_SCALES = (8, 4, 2)
# Fast decoding keeps the shorter side at least 4.4x the crop (986 px for 224): judged by a
# trained network on 200 photos, drafting to 2-3x the resize moved a probability by up to
# 0.044, beyond the 0.02 gate; to 4x the crop by 0.015 with one judge and 0.021 with another
# (a 1,908 px square halved to 954). 4.4x is the most that still decodes a 24 MP photo
# (4,000 px short side) at 1/4 (docs/performance.md, sections 00e and 00h).
FAST_MIN_CROP_MULTIPLE = 4.4
DEFAULT_DECODE_MEMORY_BYTES = 512 * 1024**2
_DEFAULT_SPEC = PreprocessSpec()


class DecodeMode(str, enum.Enum):
    EXACT = "exact"
    FAST = "fast"

    @property
    def cache_tag(self) -> str:
        """The mode in a result cache's key. Fast's tag changes whenever its pixels do, so that
        no answer of an earlier fast decode is served as one of today's."""
        return "fast-3" if self is DecodeMode.FAST else self.value


class DecodeBudget:
    """Bytes that concurrent decodes of one process may hold; a decode waits for room.

    A decode larger than the whole budget still runs, alone, so that no image is refused
    for its size here (``max_pixels`` does that)."""

    def __init__(self, limit_bytes: int = DEFAULT_DECODE_MEMORY_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0
        self._room = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        nbytes = min(nbytes, self.limit_bytes)
        with self._room:
            self._room.wait_for(lambda: self.held_bytes + nbytes <= self.limit_bytes)
            self.held_bytes += nbytes
        try:
            yield
        finally:
            with self._room:
                self.held_bytes -= nbytes
                self._room.notify_all()


@dataclass(frozen=True)
class Decoder:
    """How a service decodes: the mode, the pixel limit, and its process's memory budget."""

    mode: DecodeMode = DecodeMode.EXACT
    max_pixels: int = DEFAULT_MAX_PIXELS
    budget: DecodeBudget = field(default_factory=DecodeBudget)

    def check_header(self, data: bytes) -> None:
        """ImageDecodeError unless ``data`` starts like an image of an allowed format within the
        pixel limit; no pixel is decoded (for a model that decodes on the server, gpu-dali)."""
        open_image(data, self.max_pixels)

    def model_input(self, data: bytes, spec: PreprocessSpec = _DEFAULT_SPEC) -> np.ndarray:
        """Encoded image -> uint8 (crop, crop, 3), as the served model takes it."""
        image = open_image(data, self.max_pixels)
        full_size, scale = image.size, 1
        if self.mode is DecodeMode.FAST:
            scale = draft_jpeg(image, fast_min_short_side(spec.crop))
        with self.budget.reserve(decode_cost(image)):
            image = finish_decoding(image)
            if spec.grayscale and image.mode != GREY:  # torchvision's Grayscale: PIL's convert("L")
                image = image.convert(GREY)
            # Resize and crop before a grey image becomes RGB: the same pixels, a third of the work.
            cropped = resize_and_crop_drafted(image, full_size, scale, spec.resize, spec.crop, spec.interpolation)
        return np.asarray(to_rgb(cropped), dtype=np.uint8)


def model_input(data: bytes, spec: PreprocessSpec = _DEFAULT_SPEC, mode: DecodeMode = DecodeMode.EXACT) -> np.ndarray:
    """``Decoder(mode).model_input``: one image, no shared budget."""
    return Decoder(mode).model_input(data, spec)


def fast_min_short_side(crop: int) -> int:
    """The shortest side fast decoding drafts a photo down to, for a model's ``crop``."""
    return math.ceil(FAST_MIN_CROP_MULTIPLE * crop)


def draft_jpeg(image: Image.Image, min_short_side: int) -> int:
    """Have libjpeg decode at the smallest DCT scale that keeps the shorter side at least
    ``min_short_side``; returns the scale's denominator (1: full size, or not a JPEG).

    The drafted image is the full-size one's pixels divided by the scale, rounded up to whole
    pixels; what it shows of the photo is the box (0, 0, width / scale, height / scale)."""
    if image.format not in ("JPEG", "MPO"):
        return 1
    width, height = image.size
    short = min(width, height)
    for scale in DCT_SCALES:
        if math.ceil(short / scale) >= min_short_side:
            # Pillow picks the largest scale that fits the size it is asked for: ask for the
            # rounded-down size (a rounded-up one gives 1/2 instead of 1/4 for a 4,001 px side).
            drafted = image.draft(image.mode, (width // scale, height // scale))
            if drafted is None:  # a JPEG Pillow cannot draft (more than one tile)
                return 1
            return round(width / drafted[1][2])
    return 1


def decode_cost(image: Image.Image) -> int:
    """Bytes the decode and conversion of ``image`` will hold at their peak (an estimate)."""
    width, height = image.size
    if image.mode in SIXTEEN_BIT_MODES:
        per_pixel = _SIXTEEN_BIT_BYTES_PER_PIXEL
    else:
        per_pixel = _BYTES_PER_PIXEL.get(image.mode, _OTHER_BYTES_PER_PIXEL)
    return width * height * per_pixel
