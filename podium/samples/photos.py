"""Real photographs for demos and tests, built at run time from scikit-image's bundled data.

Podium must not commit third-party images, but scikit-image's wheel ships a handful of
photographs inside the package. Only those are used here: every loader below reads a file
that is installed with scikit-image, and a photograph whose file is missing is skipped
rather than fetched, so nothing here ever touches the network (or needs ``pooch``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# name -> (skimage.data function, the file it reads inside skimage/data/).
# Chosen because they are photographs (not synthetic or binary images) and ship in the
# wheel. Left out on purpose: horse/logo/colorwheel/phantom (not photographs), cat (same
# file as chelsea), motorcycle right view (near-duplicate of the left one), lfw_subset
# (25 px faces), text (near-duplicate subject of page) and every function that needs pooch
# (brain, cells3d, eagle, kidney, lily, skin, vortex, ...), which would download.
_PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "astronaut.png"),
    "camera": ("camera", "camera.png"),
    "chelsea": ("chelsea", "chelsea.png"),
    "coffee": ("coffee", "coffee.png"),
    "rocket": ("rocket", "rocket.jpg"),
    "motorcycle": ("stereo_motorcycle", "motorcycle_left.png"),
    "hubble_deep_field": ("hubble_deep_field", "hubble_deep_field.jpg"),
    "immunohistochemistry": ("immunohistochemistry", "ihc.png"),
    "retina": ("retina", "retina.jpg"),
    "moon": ("moon", "moon.png"),
    "coins": ("coins", "coins.png"),
    "clock": ("clock", "clock_motion.png"),
    "brick": ("brick", "brick.png"),
    "grass": ("grass", "grass.png"),
    "gravel": ("gravel", "gravel.png"),
    "page": ("page", "page.png"),
}

_IMAGE_EXTENSIONS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


@functools.lru_cache(maxsize=1)
def _bundled_arrays() -> tuple[tuple[str, np.ndarray], ...]:
    """Load the bundled photographs once per process (read-only arrays)."""
    import skimage.data  # deferred: skimage import is slow and not needed at import time

    data_dir = Path(skimage.data.__file__).parent
    loaded: list[tuple[str, np.ndarray]] = []
    for name, (function_name, filename) in _PHOTOS.items():
        # The file check is what guarantees "offline": skimage only downloads files that
        # are not in its package directory, so we never call it for one that is absent.
        if not (data_dir / filename).is_file():
            continue
        loader: Callable[[], object] | None = getattr(skimage.data, function_name, None)
        if loader is None:
            continue
        pixels = loader()
        if isinstance(pixels, tuple):  # stereo_motorcycle -> (left, right, disparity)
            pixels = pixels[0]
        array = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
        array.setflags(write=False)
        loaded.append((name, array))
    if not loaded:
        raise RuntimeError("scikit-image ships none of the expected bundled photographs")
    return tuple(loaded)


def bundled_photos() -> dict[str, Image.Image]:
    """Photographs shipped inside scikit-image, as fresh PIL images (mode RGB or L).

    Offline: only files inside the installed scikit-image package are read. The order is
    fixed, so index-based uses (class assignment, variations) are deterministic.
    """
    return {name: Image.fromarray(np.array(array)) for name, array in _bundled_arrays()}


def _random_crop(image: Image.Image, rng: np.random.Generator, low: float = 0.4) -> Image.Image:
    """A crop keeping between ``low`` and 90 % of each side, at a random position."""
    width, height = image.size
    crop_w = max(1, int(width * rng.uniform(low, 0.9)))
    crop_h = max(1, int(height * rng.uniform(low, 0.9)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return image.crop((left, top, left + crop_w, top + crop_h))


def _rescale_long_side(image: Image.Image, long_side: int) -> Image.Image:
    width, height = image.size
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.LANCZOS)


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _IMAGE_EXTENSIONS[path.suffix.lstrip(".").lower()]
    options: dict[str, object] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    image.save(path, fmt, **options)
    return path


# Nested folders of the demo tree, so that a client's directory walk is exercised.
_NESTED_DIRS = ("events/2024", "events/2024/finals", "archive/old/scans")


def write_photo_folder(dest: Path, count: int = 48, seed: int = 0) -> list[Path]:
    """Write ``count`` real photographs under ``dest`` and return their paths.

    The bundled photos come first (``astronaut.jpg``, ...); the rest are deterministic
    variations of them -- crops, mirror images, rescales (long side ~100..1500 px) and
    copies in nested folders -- mostly JPEG with some PNG and WebP. Same seed, same files.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = list(bundled_photos().items())
    written: list[Path] = []

    for name, image in photos[:count]:
        written.append(_save(image, dest / f"{name}.jpg"))

    kinds = ("crop", "flip", "rescale", "nested")
    for i in range(max(0, count - len(photos))):
        name, image = photos[int(rng.integers(len(photos)))]
        kind = kinds[i % len(kinds)]
        # Mostly JPEG, like real photo folders; every 5th PNG and every 7th WebP.
        ext = "png" if i % 5 == 4 else "webp" if i % 7 == 6 else "jpg"
        if kind == "crop":
            variant = _random_crop(image, rng)
            path = dest / "crops" / f"{name}_crop{i}.{ext}"
        elif kind == "flip":
            variant = ImageOps.mirror(image)
            if rng.random() < 0.5:
                variant = _rescale_long_side(variant, int(rng.integers(100, 1501)))
            path = dest / "flips" / f"{name}_flip{i}.{ext}"
        elif kind == "rescale":
            long_side = int(rng.integers(100, 1501))
            variant = _rescale_long_side(image, long_side)
            path = dest / "sizes" / f"{name}_{variant.width}x{variant.height}.{ext}"
        else:
            variant = _rescale_long_side(_random_crop(image, rng, 0.6), int(rng.integers(100, 1501)))
            folder = _NESTED_DIRS[int(rng.integers(len(_NESTED_DIRS)))]
            path = dest / folder / f"{name}_{i}.{ext}"
        if path in written:  # two rescales of one photo can land on the same size
            path = path.with_name(f"{path.stem}_{i}{path.suffix}")
        written.append(_save(variant, path))
    return written
