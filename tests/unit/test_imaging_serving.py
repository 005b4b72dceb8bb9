"""The serving decode: exact equals the torchvision path to the bit; fast drafts only large JPEGs;
the memory budget makes large decodes wait; only allowed formats are opened."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from podium.core.imaging import DecodeBudget, DecodeMode, Decoder, ImageDecodeError, decode_rgb, model_input, preprocess
from podium.core.imaging.decode import open_image
from podium.core.imaging.serving import decode_cost, draft_jpeg, fast_min_short_side
from podium.core.imaging.transform import crop_box


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour gradients with fine noise: detail at every scale, cheap to make."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((width, height), Image.BILINEAR)
    noise = rng.integers(0, 12, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(np.minimum(np.asarray(coarse), 243) + noise)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "LA", "RGBA", "CMYK", "I;16"])
@pytest.mark.parametrize("size", [(9, 7), (300, 200), (201, 517), (2000, 37)])
def test_exact_is_the_torchvision_path_to_the_bit(mode, size):
    image = photo(*size)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257 + 100)
    else:
        image = image.convert(mode)
    data = encoded(image, "TIFF" if mode == "CMYK" else "PNG")
    assert np.array_equal(model_input(data), preprocess(decode_rgb(data)))


def test_sixteen_bit_scaling_rounds_like_v_over_257():
    values = np.array([[0, 128, 129, 257, 32767, 65534, 65535]], dtype=np.uint16)
    data = encoded(Image.fromarray(values), "PNG")
    got = np.asarray(decode_rgb(data).convert("L"))[0]
    assert got.tolist() == [round(v / 257) for v in values[0].tolist()]


@pytest.mark.parametrize("size", [(1022, 1100), (640, 480), (300, 5000)])
def test_fast_decodes_small_jpegs_exactly(size):
    data = encoded(photo(*size), "JPEG", quality=90)
    assert draft_jpeg(open_image(data), 512) == 1
    assert np.array_equal(model_input(data, mode=DecodeMode.FAST), model_input(data))


@pytest.mark.parametrize(("size", "scale"), [((2048, 1536), 2), ((4000, 3000), 4), ((6000, 4200), 8)])
def test_fast_drafts_large_jpegs_to_at_least_twice_the_resize(size, scale):
    data = encoded(photo(*size), "JPEG", quality=90)
    image = open_image(data)
    assert draft_jpeg(image, 512) == scale
    assert min(image.size) >= 512 and min(image.size) < 2 * 512 * 2
    exact, fast = model_input(data).astype(int), model_input(data, mode=DecodeMode.FAST).astype(int)
    assert np.abs(exact - fast).mean() < 2.0  # a few grey levels at most, on average


def bars(width: int, height: int) -> Image.Image:
    """Sharp-edged stripes both ways: a crop shifted by a fraction of a pixel shows."""
    image = Image.new("RGB", (width, height), (30, 60, 90))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 97):
        draw.rectangle((x, 0, x + 40, height), fill=(220, 200, 40))
    for y in range(0, height, 89):
        draw.rectangle((0, y, width, y + 30), fill=(10, 180, 230))
    return image


@pytest.mark.parametrize(
    ("size", "scale"),
    [((3001, 2001), 2), ((1999, 3203), 2), ((4001, 3001), 2), ((5003, 3997), 4), ((6000, 4000), 4), ((8003, 7900), 8)],
)
def test_fast_resamples_the_exact_crop_from_the_drafted_pixels(size, scale):
    # Sides not divisible by the scale: the drafted image is rounded up to whole pixels, and
    # resizing it as if it were the photo shifted the crop (23-35 grey levels at these edges).
    data = encoded(bars(*size), "JPEG", quality=95)
    image = open_image(data)
    assert draft_jpeg(image, fast_min_short_side(224)) == scale
    assert image.size == (-(-size[0] // scale), -(-size[1] // scale))
    exact, fast = model_input(data).astype(int), model_input(data, mode=DecodeMode.FAST).astype(int)
    assert np.abs(exact - fast).max() <= 6


def test_fast_drafts_no_closer_than_four_point_four_crops():
    assert fast_min_short_side(224) == 986
    for short, drafted in ((1970, False), (1971, True)):  # 1,971 px halves to 986 (rounded up)
        data = encoded(photo(short + 500, short), "JPEG", quality=90)
        assert (draft_jpeg(open_image(data), fast_min_short_side(224)) > 1) is drafted
        same = np.array_equal(model_input(data, mode=DecodeMode.FAST), model_input(data))
        assert same is not drafted


def test_the_crop_box_is_what_resize_and_crop_shows():
    assert crop_box(512, 512, 256, 224) == (32.0, 32.0, 480.0, 480.0)
    # 600x300 -> 512x256, crop at (144, 16): a box 1.171875 times as large in the photo
    assert crop_box(600, 300, 256, 224) == (168.75, 18.75, 431.25, 281.25)
    assert crop_box(300, 200, 256, 300) is None  # torchvision pads: no box of the photo


def test_fast_leaves_other_formats_alone():
    data = encoded(photo(2048, 1536), "PNG")
    assert draft_jpeg(open_image(data), 512) == 1


def test_the_budget_makes_large_decodes_wait_for_room():
    budget = DecodeBudget(limit_bytes=100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def decode(nbytes: int) -> None:
        with budget.reserve(nbytes):
            with lock:
                inside[0] += nbytes
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= nbytes

    threads = [threading.Thread(target=decode, args=(n,)) for n in (60, 60, 30, 250, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert most[0] <= 250 and budget.held_bytes == 0
    assert most[0] == 250 or most[0] <= 100  # a decode larger than the budget runs alone


def test_decode_cost_counts_bytes_per_pixel():
    assert decode_cost(open_image(encoded(photo(100, 50), "PNG"))) == 100 * 50 * 4
    grey16 = Image.fromarray(np.zeros((50, 100), dtype=np.uint16))
    assert decode_cost(open_image(encoded(grey16, "PNG"))) == 100 * 50 * 3


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "TGA"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    data = encoded(photo(32, 32), fmt)
    with pytest.raises(ImageDecodeError, match="not a recognised image format .*JPEG, PNG"):
        Decoder().model_input(data)


def test_the_pixel_limit_applies_before_decoding():
    data = encoded(photo(300, 300), "PNG")
    with pytest.raises(ImageDecodeError, match="more than the limit of 10,000"):
        Decoder(max_pixels=10_000).model_input(data)


def test_answers_of_the_earlier_fast_decode_are_not_served_from_the_cache():
    # "fast" keyed the answers of the fast decode that shifted the crop (before 2026-12-04).
    assert DecodeMode.FAST.cache_tag not in ("fast", DecodeMode.EXACT.cache_tag)
    assert DecodeMode.EXACT.cache_tag == "exact"  # exact answers cached earlier stay valid
