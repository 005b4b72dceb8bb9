"""Bytes -> RGB PIL image, with readable errors for anything that is not one.

Conversions follow what a torchvision ImageFolder pipeline sees (``Image.convert("RGB")``),
with two deliberate differences: EXIF orientation is applied, and 16-bit images are
scaled to 8 bits (Pillow's own conversion clips them to white).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from errors import InvalidArgument

# Pillow itself refuses more than ~89 MP; below that, 64 MP (192 MB as RGB) is our limit.
DEFAULT_MAX_PIXELS = 64_000_000

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class ImageDecodeError(InvalidArgument):
    """The bytes are not an image this service can classify; the message says why."""


def decode_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode encoded image bytes into an RGB image, EXIF orientation applied.

    Animated images give their first frame. Raises ImageDecodeError with a reason a
    person can act on for empty, truncated, oversized or non-image data.
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(f"image is {width}x{height} pixels, more than the limit of {max_pixels:,}")
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES:
        image = Image.fromarray(_sixteen_to_eight(np.asarray(image)), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(_float_to_eight(np.asarray(image)), mode="L")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _sixteen_to_eight(pixels: np.ndarray) -> np.ndarray:
    """Scale 0..65535 to 0..255 with rounding (v * 255 / 65535 == v / 257)."""
    wide = np.clip(pixels.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _float_to_eight(pixels: np.ndarray) -> np.ndarray:
    scale = 255.0 if float(np.nanmax(pixels, initial=0.0)) <= 1.0 else 1.0
    return np.clip(np.nan_to_num(pixels) * scale + 0.5, 0, 255).astype(np.uint8)


# Truncated files must fail, not be silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
