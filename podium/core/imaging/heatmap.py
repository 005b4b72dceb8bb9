"""An activation map drawn over the picture the model saw: the overlay PNGs of ``--heatmaps``.

The map covers the centre crop, not the whole file, so the picture is the crop (resized
and centre-cropped as for the model). The coarse grid (7 x 7) is upsampled bicubically
to the picture's size and drawn in a perceptually uniform colour map (matplotlib's
``inferno``: equal steps of the map look like equal steps of colour) whose opacity grows
with the value, so that where the map is 0 the photograph shows through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from podium.core.errors import FailedPrecondition
from podium.core.imaging.transform import PreprocessSpec, preprocess

COLOUR_MAP = "inferno"
# Opacity of the hottest cell; the coldest are fully transparent. Opacity grows with the
# square root of the value, so that the map's middle range stays visible over a photograph.
MAX_OPACITY = 0.7
# Cells below this share of the maximum are left out of the overlay altogether.
FLOOR = 0.03
SCALE = 2  # the 224-pixel crop is small on a screen: overlays are drawn at twice its size
CAPTION_HEIGHT = 30
FONT_SIZE = 17


def overlay(
    image: Image.Image,
    spec: PreprocessSpec,
    grid: tuple[int, int],
    values: Sequence[float],
    caption: str,
    scale: int = SCALE,
) -> Image.Image:
    """The crop the model saw, ``scale`` times larger, with the map over it and ``caption`` below."""
    crop = Image.fromarray(preprocess(image.convert("RGB"), spec))
    size = (crop.width * scale, crop.height * scale)
    picture = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    heat = upsampled(grid, values, size)
    colours = _colour_map()(heat)[..., :3]
    opacity = (MAX_OPACITY * np.sqrt(np.clip((heat - FLOOR) / (1 - FLOOR), 0.0, 1.0)))[..., None]
    blended = picture * (1 - opacity) + colours * opacity
    drawn = Image.fromarray(np.round(blended * 255).astype(np.uint8))
    return _with_caption(drawn, caption)


def upsampled(grid: tuple[int, int], values: Sequence[float], size: tuple[int, int]) -> np.ndarray:
    """The grid's cells as a smooth ``size`` (width, height) field in [0, 1], cell centres aligned."""
    rows, cols = grid
    cells = np.asarray(values, dtype=np.float32).reshape(rows, cols)
    smooth = Image.fromarray(cells, mode="F").resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(smooth, dtype=np.float32), 0.0, 1.0)


def _with_caption(picture: Image.Image, caption: str) -> Image.Image:
    framed = Image.new("RGB", (picture.width, picture.height + CAPTION_HEIGHT), (20, 20, 24))
    framed.paste(picture, (0, 0))
    draw = ImageDraw.Draw(framed)
    draw.text((8, picture.height + (CAPTION_HEIGHT - FONT_SIZE) // 2 - 1), caption, fill=(245, 245, 245), font=_font())
    return framed


@cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


@cache
def _colour_map():
    try:
        from matplotlib import colormaps  # only the overlays need it; workers never draw
    except ImportError:
        raise FailedPrecondition(
            "drawing heat maps needs matplotlib", hint="pip install 'podium[heatmaps]' (or matplotlib)"
        ) from None
    return colormaps[COLOUR_MAP]
