"""Bytes -> RGB (or grey) PIL image, with readable errors for anything that is not one.

Conversions follow what a torchvision ImageFolder pipeline sees (``Image.convert("RGB")``),
with two deliberate differences: EXIF orientation is applied, and 16-bit images are
scaled to 8 bits (Pillow's own conversion clips them to white). Only the formats in
``ALLOWED_FORMATS`` are opened: Pillow knows 43, and each parser is attack surface.

``open_image`` stops after reading the header, so that the caller can check the size
and reserve memory before the pixels are decoded; ``finish_decoding`` decodes them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from podium.core.errors import InvalidArgument

# Pillow itself refuses more than ~89 MP; below that, 64 MP (192 MB as RGB) is our limit.
DEFAULT_MAX_PIXELS = 64_000_000
# Camera and web formats. (JPEG covers MPO, the multi-picture JPEG some cameras write.)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "AVIF")
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
# Grey images stay one channel until after the resize: identical result, a third of the memory.
GREY = "L"
_ROWS_PER_BLOCK = 256


class ImageDecodeError(InvalidArgument):
    """The bytes are not an image this service can classify; the message says why."""


def decode_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode encoded image bytes into an RGB image, EXIF orientation applied.

    Animated images give their first frame. Raises ImageDecodeError with a reason a
    person can act on for empty, truncated, oversized or non-image data.
    """
    return to_rgb(finish_decoding(open_image(data, max_pixels)))


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read the header only: format, size and mode are known, no pixel is decoded yet."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    with _decode_errors_converted():
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        width, height = image.size
        # Above Pillow's own limit it would only warn (up to twice it): refuse here instead,
        # rather than turn warnings into errors, which is process-wide and not thread-safe.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        if width * height > limit:
            raise ImageDecodeError(f"image is {width}x{height} pixels, more than the limit of {limit:,}")
        return image


def finish_decoding(image: Image.Image) -> Image.Image:
    """Decode the pixels, apply EXIF orientation, and bring the image to RGB or, if grey, L."""
    with _decode_errors_converted():
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a 45 MP photo
    return _to_rgb_or_grey(image)


def to_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_rgb_or_grey(image: Image.Image) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        return _sixteen_to_eight(image)
    if image.mode == "F":
        return Image.fromarray(_float_to_eight(np.asarray(image)), mode=GREY)
    if image.mode in ("RGB", GREY):
        return image
    return image.convert("RGB")


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """Scale 0..65535 to 0..255 with rounding (v * 255 / 65535 == v / 257), a block of rows
    at a time in 32-bit integers: a 64 MP 16-bit scan never widens whole to int64."""
    width, height = image.size
    out = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _ROWS_PER_BLOCK):
        bottom = min(top + _ROWS_PER_BLOCK, height)
        block = np.asarray(image.crop((0, top, width, bottom)))
        wide = np.clip(block, 0, 65535).astype(np.uint32)
        out[top:bottom] = (wide * 255 + 32767) // 65535
    return Image.fromarray(out, mode=GREY)


def _float_to_eight(pixels: np.ndarray) -> np.ndarray:
    scale = 255.0 if float(np.nanmax(pixels, initial=0.0)) <= 1.0 else 1.0
    return np.clip(np.nan_to_num(pixels) * scale + 0.5, 0, 255).astype(np.uint8)


class _decode_errors_converted:
    """Pillow's many exception types -> ImageDecodeError with a reason."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or isinstance(exc, ImageDecodeError):
            return False
        if isinstance(exc, UnidentifiedImageError):
            formats = ", ".join(ALLOWED_FORMATS)
            raise ImageDecodeError(f"not a recognised image format (Podium reads {formats})") from None
        if isinstance(exc, Image.DecompressionBombError):
            raise ImageDecodeError(f"image too large: {exc}") from None
        if isinstance(exc, OSError | SyntaxError | ValueError | EOFError):
            raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
        return False


# Truncated files must fail, not be silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
