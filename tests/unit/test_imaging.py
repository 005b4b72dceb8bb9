"""Decoding and the serving transform, against torchvision and Pillow directly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image

from podium.core.imaging import ImageDecodeError, PreprocessSpec, center_crop, decode_rgb, preprocess, resize_shorter
from podium.core.imaging.transform import resize_and_crop
from tests.support.images import png_claiming


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, width * height * 3).reshape(height, width, 3)
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(gradient + noise, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("size", [(8, 8), (300, 200), (200, 300), (2000, 37), (37, 2000), (224, 224), (256, 257)])
def test_transform_is_torchvision_eval_resize_and_crop(size):
    image = photo(*size)
    expected = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()])(image).permute(1, 2, 0).numpy()
    got = preprocess(image)
    assert got.dtype == np.uint8 and got.shape == (224, 224, 3)
    assert np.array_equal(got, expected)


# Squares (to 256 every side is a power-of-two fraction of it): resampled straight to the crop.
EXACT_SHORTCUT = [(224, 224), (448, 448), (512, 512), (160, 160), (1000, 1000), (300, 300), (255, 255)]


@pytest.mark.parametrize("size", EXACT_SHORTCUT + [(300, 400), (640, 480), (200, 300), (256, 256)])
def test_the_crop_alone_is_resampled_only_where_that_is_exact(size, monkeypatch):
    image = photo(*size, seed=size[0])
    expected = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()])(image).permute(1, 2, 0).numpy()
    boxes = []
    resize = Image.Image.resize
    monkeypatch.setattr(
        Image.Image, "resize", lambda self, *a, **kw: boxes.append(kw.get("box")) or resize(self, *a, **kw)
    )
    assert np.array_equal(preprocess(image), expected)
    assert [box is not None for box in boxes] == ([True] if size in EXACT_SHORTCUT else [False] * len(boxes))


def test_resizing_the_crop_alone_gives_the_pixels_of_resizing_then_cropping():
    rng = np.random.default_rng(20261203)
    widths, heights = [224, 448, 512, 608, 912, 1000], [224, 384, 448, 608, 1500]
    specs = [(256, 224), (232, 224), (342, 299), (224, 224), (160, 128), (256, 256)]
    for case in range(150):  # half of the sizes drawn from those the shortcut takes
        width = int(rng.choice(widths)) if case % 2 else int(rng.integers(16, 900))
        height = width if case % 3 else (int(rng.choice(heights)) if case % 2 else int(rng.integers(16, 900)))
        size, crop = specs[case % len(specs)]
        interpolation = ("bilinear", "bicubic")[case % 2]
        image = photo(width, height, seed=case).convert(("RGB", "L")[case % 5 == 0])
        two_steps = center_crop(resize_shorter(image, size, interpolation), crop)
        got = resize_and_crop(image, size, crop, interpolation)
        assert np.array_equal(np.asarray(got), np.asarray(two_steps)), (width, height, size, crop, interpolation)


def test_other_sizes_follow_the_spec():
    assert preprocess(photo(500, 400), PreprocessSpec(resize=160, crop=128)).shape == (128, 128, 3)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "JPEG"),
        ("L", "PNG"),
        ("RGBA", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("LA", "PNG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("RGB", "TIFF"),
        ("1", "PNG"),
    ],
)
def test_every_mode_becomes_rgb(mode, fmt):
    decoded = decode_rgb(encode(photo(64, 48).convert(mode), fmt))
    assert decoded.mode == "RGB" and decoded.size == (64, 48)


def test_sixteen_bit_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    for fmt in ("PNG", "TIFF"):
        decoded = np.asarray(decode_rgb(encode(Image.fromarray(values), fmt)))
        assert decoded[0, :, 0].tolist() == [0, 1, 128, 255]


def test_exif_orientation_is_applied():
    upright = photo(60, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90° clockwise
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())
    assert decode_rgb(data).size == (60, 30)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 20), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert decode_rgb(buffer.getvalue()).getpixel((5, 5))[0] > 200


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a recognised image"),
        (encode(photo(300, 300), "JPEG")[:2000], "truncated"),
        (encode(photo(300, 300), "PNG")[:500], "truncated"),
    ],
)
def test_bad_bytes_give_readable_errors(data, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        decode_rgb(data)


@pytest.mark.parametrize("side", [30_000, 12_000])
def test_decompression_bomb_fails_without_decoding(side):
    with pytest.raises(ImageDecodeError, match="too large|more than the limit"):
        decode_rgb(png_claiming(side, side))


def test_padding_when_resize_is_smaller_than_crop_matches_torchvision():
    image = photo(150, 90)
    expected = T.Compose([T.Resize(101), T.CenterCrop(120), T.PILToTensor()])(image).permute(1, 2, 0).numpy()
    assert np.array_equal(preprocess(image, PreprocessSpec(resize=101, crop=120)), expected)


def test_decoding_leaves_the_process_warning_filters_alone(monkeypatch: pytest.MonkeyPatch):
    """Workers decode in threads: changing warnings filters per image is not thread-safe."""
    import warnings

    def refuse(*args, **kwargs):
        raise AssertionError("decoding changed the process-wide warning filters")

    monkeypatch.setattr(warnings, "simplefilter", refuse)
    monkeypatch.setattr(warnings, "catch_warnings", refuse)
    decode_rgb(encode(photo(64, 48), "PNG"))
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        decode_rgb(png_claiming(12_000, 12_000), max_pixels=10**9)  # above Pillow's own limit: refused too
