"""A hostile, many-format image folder for end-to-end tests.

``make_test_folder`` writes real photographs (scikit-image's bundled ones, see ``samples``)
in every format, mode, size and naming quirk a client or worker is likely to meet, plus
broken files that must produce a per-image error and hidden files that must be skipped.
Everything is deterministic for a seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from podium.samples import bundled_photos

EXIF_ORIENTATION_TAG = 0x0112

# What ImageOps.exif_transpose does for each orientation is the inverse of what we apply
# here: we store the pixels "as the camera wrote them", so that a correct decoder shows the
# upright photograph and a decoder that ignores the tag shows it mirrored or rotated.
_STORE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@dataclass
class TestFolder:
    """What ``make_test_folder`` wrote, as paths relative to its root with '/' separators."""

    __test__ = False  # not a pytest test class, despite the name

    root: Path
    valid: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)

    @property
    def visible(self) -> list[str]:
        """Every file a client must report on (one result line each)."""
        return sorted([*self.valid, *self.broken])


class _Writer:
    """Writes files under a root and records each one in the TestFolder."""

    def __init__(self, root: Path) -> None:
        self.folder = TestFolder(root=root)

    def _path(self, rel: str) -> Path:
        path = self.folder.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def image(self, rel: str, image: Image.Image, fmt: str, **options: object) -> None:
        image.save(self._path(rel), fmt, **options)
        self.folder.valid.append(rel)

    def broken(self, rel: str, data: bytes, why: str) -> None:
        self._path(rel).write_bytes(data)
        self.folder.broken[rel] = why

    def hidden(self, rel: str, data: bytes) -> None:
        self._path(rel).write_bytes(data)
        self.folder.hidden.append(rel)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop to the target aspect ratio, then resize: no distortion, any size."""
    return ImageOps.fit(image, size, Image.LANCZOS)


def _crop(image: Image.Image, rng: np.random.Generator, keep: float) -> Image.Image:
    """A random crop keeping ``keep`` of each side (non-square, off-centre content)."""
    width, height = image.size
    crop_w, crop_h = max(1, int(width * keep)), max(1, int(height * keep * rng.uniform(0.75, 1.0)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return image.crop((left, top, left + crop_w, top + crop_h))


def _sixteen_bit(grey: Image.Image, rng: np.random.Generator, big_endian: bool = False) -> Image.Image:
    """A 16-bit grey image using the full 0..65535 range: stretched grey x 257 plus noise."""
    pixels = np.asarray(grey.convert("L"), dtype=np.float64)
    low, high = pixels.min(), pixels.max()
    stretched = (pixels - low) * (255.0 / max(high - low, 1.0))
    wide = stretched * 257.0 + rng.normal(0.0, 300.0, size=stretched.shape)
    wide = np.clip(np.round(wide), 0, 65535)
    wide.flat[np.argmin(wide)], wide.flat[np.argmax(wide)] = 0, 65535  # both extremes present
    wide = wide.astype(">u2" if big_endian else "<u2")
    return Image.fromarray(wide)  # mode I;16 (or I;16B), inferred from the dtype


def _with_alpha(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """RGBA with real transparency: a fully transparent corner disc and a soft gradient."""
    rgba = image.convert("RGBA")
    width, height = rgba.size
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = np.clip(64 + 191 * xx / max(width - 1, 1), 0, 255)
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    alpha[(xx - cx) ** 2 + (yy - cy) ** 2 < (0.25 * min(width, height)) ** 2] = 0
    rgba.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    return rgba


def _palette_with_transparency(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Mode P with 255 colours; index 255 marks a transparent rectangle."""
    quantized = image.convert("RGB").quantize(colors=255)
    indices = np.array(quantized, dtype=np.uint8)
    height, width = indices.shape
    top, left = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
    indices[top : top + height // 3, left : left + width // 3] = 255
    palette = quantized.getpalette() or []
    palette = (palette + [0] * 768)[:765] + [0, 255, 0]
    result = Image.frombytes("P", quantized.size, indices.tobytes())
    result.putpalette(palette)
    result.info["transparency"] = 255
    return result


def make_test_folder(root: Path, seed: int = 0) -> TestFolder:
    """Write the hostile test folder under ``root`` and describe what is in it.

    ``valid`` files must classify; ``broken`` ones must give a per-image error (value: why);
    ``hidden`` ones must be skipped by a client walking the folder. Same seed, same bytes.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    photos = bundled_photos()
    names = list(photos)
    w = _Writer(root)

    def photo(name: str) -> Image.Image:
        return photos[name].copy()

    def rgb(name: str) -> Image.Image:
        return photos[name].convert("RGB")

    # --- One file per format, plain RGB or grey ---------------------------------------------
    w.image("astronaut.jpg", rgb("astronaut"), "JPEG", quality=92)
    w.image("coffee.png", rgb("coffee"), "PNG")
    w.image("chelsea.webp", rgb("chelsea"), "WEBP", quality=85)
    w.image("rocket.bmp", _fit(rgb("rocket"), (320, 214)), "BMP")
    w.image("camera.gif", photo("camera"), "GIF")
    w.image("motorcycle.tiff", rgb("motorcycle"), "TIFF", compression="tiff_lzw")
    w.image("hubble_deep_field.jpg", rgb("hubble_deep_field"), "JPEG", quality=90)
    w.image("immunohistochemistry.png", rgb("immunohistochemistry"), "PNG")
    # Naming quirks: upper-case extensions, no extension, spaces and non-ASCII characters.
    w.image("COINS.JPG", photo("coins"), "JPEG", quality=90)
    w.image("Clock.PNG", photo("clock"), "PNG")
    w.image("Retina.JPEG", _fit(rgb("retina"), (700, 700)), "JPEG", quality=88)
    w.image("no_extension", _crop(rgb("rocket"), rng, 0.7), "PNG")
    w.image("été photo.jpg", _crop(rgb("chelsea"), rng, 0.8), "JPEG", quality=90)
    w.image("写真 ファイル 01.webp", _crop(rgb("coffee"), rng, 0.7), "WEBP", quality=80)

    # --- Pixel modes -------------------------------------------------------------------------
    w.image("modes/grey_L.png", photo("moon"), "PNG")
    w.image("modes/grey_L.jpg", photo("brick"), "JPEG", quality=90)
    w.image("modes/bilevel_1.png", photo("page").convert("1"), "PNG")
    w.image("modes/rgba_transparent.png", _with_alpha(rgb("astronaut"), rng), "PNG")
    w.image("modes/rgba_transparent.webp", _with_alpha(rgb("coffee"), rng), "WEBP", lossless=True)
    w.image("modes/rgba.tiff", _with_alpha(rgb("rocket"), rng), "TIFF", compression="tiff_deflate")
    w.image("modes/la.png", _with_alpha(photo("coins"), rng).convert("LA"), "PNG")
    w.image("modes/palette.png", rgb("rocket").quantize(colors=256), "PNG")
    w.image("modes/palette.bmp", _fit(rgb("chelsea"), (300, 200)).quantize(colors=64), "BMP")
    w.image(
        "modes/palette_transparent.png",
        _palette_with_transparency(rgb("chelsea"), rng),
        "PNG",
        transparency=255,
    )
    w.image(
        "modes/palette_transparent.gif",
        _palette_with_transparency(rgb("motorcycle"), rng),
        "GIF",
        transparency=255,
    )
    w.image("modes/cmyk.jpg", rgb("astronaut").convert("CMYK"), "JPEG", quality=90)
    w.image("modes/cmyk.tiff", rgb("hubble_deep_field").convert("CMYK"), "TIFF", compression="tiff_lzw")
    w.image("modes/grey16.png", _sixteen_bit(photo("camera"), rng), "PNG")
    w.image("modes/grey16.tiff", _sixteen_bit(photo("moon"), rng), "TIFF")
    w.image("modes/grey16_big_endian.tiff", _sixteen_bit(photo("clock"), rng, big_endian=True), "TIFF")
    w.image("modes/grey16_from_rgb.png", _sixteen_bit(rgb("coffee"), rng), "PNG")

    # --- Animations: only the first frame counts ---------------------------------------------
    frames = [_fit(rgb(name), (360, 240)) for name in ("chelsea", "rocket", "coffee")]
    w.image(
        "animated/three_frames.gif",
        frames[0].quantize(colors=256),
        "GIF",
        save_all=True,
        append_images=[frame.quantize(colors=256) for frame in frames[1:]],
        duration=200,
        loop=0,
    )
    w.image(
        "animated/three_frames.webp",
        frames[0],
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=200,
        loop=0,
        quality=85,
    )
    w.image(
        "animated/three_frames.png",
        frames[0],
        "PNG",
        save_all=True,
        append_images=frames[1:],
        duration=200,
        loop=0,
    )

    # --- EXIF orientations 2..8 on non-square, non-symmetric photos --------------------------
    # astronaut and page: with the checkpoint of tests.support.reference.fit_checkpoint their
    # answers change most when mirrored or rotated (rocket, clock, retina, moon and
    # hubble_deep_field are nearly orientation-blind to it), so a decoder that ignores the
    # tag gets different probabilities, and mostly a different top-1.
    upright_sources = {
        2: "astronaut",
        3: "page",
        4: "page",
        5: "page",
        6: "astronaut",
        7: "astronaut",
        8: "page",
    }
    for orientation, name in upright_sources.items():
        upright = _crop(rgb(name), rng, 0.85)
        stored = upright.transpose(_STORE_FOR_ORIENTATION[orientation])
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        w.image(
            f"orientation/exif_{orientation}_{name}.jpg",
            stored,
            "JPEG",
            quality=92,
            exif=exif.tobytes(),
        )
    # The same tag in a WebP container, which some decoders ignore.
    upright = _crop(rgb("page"), rng, 0.8)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    w.image(
        "orientation/exif_6_page.webp",
        upright.transpose(_STORE_FOR_ORIENTATION[6]),
        "WEBP",
        quality=90,
        exif=exif.tobytes(),
    )

    # --- Sizes: 1 px lines, 8 px squares, thin strips, exact 224/256 edges, 2000 px ----------
    w.image("sizes/tiny_8x8.png", _fit(rgb("astronaut"), (8, 8)), "PNG")
    w.image("sizes/tiny_8x8.jpg", _fit(rgb("coffee"), (8, 8)), "JPEG", quality=95)
    w.image("sizes/small_16x12.bmp", _fit(rgb("rocket"), (16, 12)), "BMP")
    w.image("sizes/line_120x1.png", _fit(rgb("chelsea"), (120, 1)), "PNG")
    w.image("sizes/strip_2000x37.jpg", _fit(rgb("motorcycle"), (2000, 37)), "JPEG", quality=90)
    w.image("sizes/strip_37x2000.png", _fit(rgb("retina"), (37, 2000)), "PNG")
    w.image("sizes/small_100x75.jpg", _fit(rgb("chelsea"), (100, 75)), "JPEG", quality=90)
    w.image("sizes/exact_224x224.png", _fit(rgb("coffee"), (224, 224)), "PNG")
    w.image("sizes/exact_256x256.png", _fit(rgb("hubble_deep_field"), (256, 256)), "PNG")
    w.image("sizes/exact_256x1000.jpg", _fit(rgb("rocket"), (256, 1000)), "JPEG", quality=90)
    w.image("sizes/odd_257x255.png", _fit(rgb("immunohistochemistry"), (257, 255)), "PNG")
    w.image("sizes/odd_301x999.webp", _fit(photo("gravel"), (301, 999)), "WEBP", quality=90)
    w.image("sizes/large_2000x1333.jpg", _fit(rgb("astronaut"), (2000, 1333)), "JPEG", quality=85)
    w.image("sizes/large_1500x2000.webp", _fit(rgb("retina"), (1500, 2000)), "WEBP", quality=80)
    w.image(
        "sizes/large_2000x2000.tif",
        _fit(photo("moon"), (2000, 2000)),
        "TIFF",
        compression="tiff_lzw",
    )

    # --- Nesting up to three levels below the root -------------------------------------------
    w.image("nested/a/coffee_small.jpg", _fit(rgb("coffee"), (300, 200)), "JPEG", quality=90)
    w.image("nested/a/b/rocket.png", _crop(rgb("rocket"), rng, 0.75), "PNG")
    w.image("nested/a/b/c/moon.webp", _crop(photo("moon"), rng, 0.75), "WEBP", quality=85)
    w.image("nested/x/y/z/PHOTO.JPG", _crop(rgb("motorcycle"), rng, 0.7), "JPEG", quality=90)

    # --- Crops of every bundled photo, so that the folder spans many classes -----------------
    crop_formats = (
        ("jpg", "JPEG", {"quality": 90}),
        ("png", "PNG", {}),
        ("webp", "WEBP", {"quality": 85}),
    )
    for i in range(len(names) + 2):
        name = names[i % len(names)]  # cycle through all photos so classes differ
        ext, fmt, options = crop_formats[i % len(crop_formats)]
        crop = _crop(photo(name), rng, float(rng.uniform(0.5, 0.9)))
        w.image(f"crops/{name}_crop{i}.{ext}", crop, fmt, **options)

    # --- Broken files: each must yield a per-image error, not a crash ------------------------
    jpeg = _encode(rgb("coffee"), "JPEG", quality=90)
    png = _encode(rgb("rocket"), "PNG")
    w.broken("broken/empty.jpg", b"", "empty file (0 bytes)")
    w.broken("broken/truncated.jpg", jpeg[: len(jpeg) // 2], "JPEG truncated to half its bytes")
    w.broken("broken/truncated.png", png[: len(png) // 2], "PNG truncated to half its bytes")
    w.broken("broken/random_bytes.jpg", rng.bytes(4096), "random bytes with a .jpg extension")
    w.broken("broken/notes.png", b"shopping list: eggs, milk\n" * 20, "text file with a .png extension")
    w.broken(
        "broken/index.html",
        b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head><body><img src='photo.jpg'></body></html>\n",
        "HTML file",
    )

    # --- Hidden files: a client walking the folder must skip them ----------------------------
    w.hidden(".DS_Store", b"\x00\x00\x00\x01Bud1" + rng.bytes(2043))
    w.hidden("crops/._astronaut_crop0.jpg", b"\x00\x05\x16\x07" + rng.bytes(508))  # AppleDouble
    w.hidden(".hidden_dir/secret.jpg", _encode(_fit(rgb("camera"), (64, 64)), "JPEG"))
    w.hidden("nested/a/.thumbnail.png", _encode(_fit(rgb("coffee"), (32, 32)), "PNG"))

    return w.folder


__all__ = ["EXIF_ORIENTATION_TAG", "TestFolder", "make_test_folder"]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb's header."""
    import struct
    import zlib

    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)
