"""Camera-sized photos: what decoding costs exact and fast, how far fast moves the answers,
and a folder of 24 MP photos end to end.

Fast decoding (PODIUM_DECODE=fast) is approximate, so it is measured against exact on
photos of many sizes, judged by a trained network: the demo's own model
(``podium.train.demo``, a MobileNetV3-Small trained on crops of the bundled photographs
these photos are made from). An untrained network is no judge: the steady stand-in moved
a probability by 0.05 when about one pixel value in a hundred changed by one grey level. How sensitive the judge is shows beside
the gate: its answers on each photo re-encoded once at JPEG quality 95, decoded exactly.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets import cached_folder
from podium.core.imaging import DecodeMode, Decoder, image_files
from podium.stores.modelrepo import Runner, run_batched

CAMERA_SIZES = ((6000, 4000), (4000, 6000))  # 24 MP, landscape and portrait
CAMERA_QUALITY = 92
REENCODE_QUALITY = 95
_MIN_SHORT_SIDE, _MAX_SHORT_SIDE = 480, 4000


@dataclass(frozen=True)
class DecodeCost:
    seconds: float  # per image, after a warm-up
    peak_mib: float  # resident memory the first decode added to a fresh process


# The gate counts top-1 agreement only where exact decoding's answer is decided: a top-1
# ahead of the runner-up by more than this (a closer call flips on any perturbation).
DECIDED_MARGIN = 0.01


@dataclass(frozen=True)
class FastAgreement:
    images: int
    drafted: int  # images fast decoded at a reduced DCT scale (the others decode exactly)
    top1_agreement: float  # where exact's margin exceeds DECIDED_MARGIN (the gate)
    max_abs_diff: float
    decided: int = 0  # images whose exact margin exceeds DECIDED_MARGIN
    top1_agreement_all: float = 0.0  # every image, close calls included
    reencoded_max_abs_diff: float = 0.0  # the judge's sensitivity: each photo re-encoded at REENCODE_QUALITY


def camera_folder(root: Path, count: int, seed: int = 7) -> Path:
    """``count`` 24 MP JPEGs (folders reused while the recipe holds)."""
    return cached_folder(root / f"camera24-{count}", ("camera", count, seed), lambda f, n: _write_camera(f, n, seed))


def sizes_folder(root: Path, count: int, seed: int = 8) -> Path:
    """``count`` JPEG photos with shorter sides from 480 to 4000 px, many framings."""
    return cached_folder(root / f"photo-sizes-{count}", ("sizes", count, seed), lambda f, n: _write_sizes(f, n, seed))


def _photos():
    from podium.samples import bundled_photos  # imports scikit-image

    return [image.convert("RGB") for image in bundled_photos().values()]


def _write_camera(folder: Path, count: int, seed: int) -> None:
    rng, photos = np.random.default_rng(seed), _photos()
    for i in range(count):
        size = CAMERA_SIZES[i % len(CAMERA_SIZES)]
        _detailed(photos[i % len(photos)], size, rng).save(folder / f"camera_{i:03d}.jpg", quality=CAMERA_QUALITY)


def _write_sizes(folder: Path, count: int, seed: int) -> None:
    rng, photos = np.random.default_rng(seed), _photos()
    for i in range(count):
        short = int(np.exp(rng.uniform(np.log(_MIN_SHORT_SIDE), np.log(_MAX_SHORT_SIDE))))
        ratio = rng.choice([1.0, 4 / 3, 3 / 2, 16 / 9])
        size = (int(short * ratio), short) if i % 3 else (short, int(short * ratio))
        quality = int(rng.integers(80, 96))
        _detailed(photos[int(rng.integers(len(photos)))], size, rng).save(
            folder / f"photo_{i:03d}.jpg", quality=quality
        )


def _detailed(photo: Image.Image, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A photo brought to ``size`` with sensor-like noise, so that there is detail to lose."""
    width, height = photo.size
    keep = rng.uniform(0.5, 1.0)
    crop_w, crop_h = int(width * keep), int(height * keep)
    left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    big = photo.crop((left, top, left + crop_w, top + crop_h)).resize(size, Image.BICUBIC)
    noise = rng.integers(-6, 7, (size[1], size[0], 1), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(big, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def decode_cost(path: Path, mode: DecodeMode) -> DecodeCost:
    """Decode + preprocess of one file, timed and measured in a fresh process (bench.decode_probe)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.decode_probe", str(path), mode.value],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(done.stdout)
    return DecodeCost(figures["seconds"], figures["peak_mib"])


def fast_agreement(runner: Runner, folder: Path) -> FastAgreement:
    """The judge's answers on fast-decoded photos against exactly decoded ones."""
    from podium.core.imaging.decode import open_image
    from podium.core.imaging.serving import draft_jpeg, fast_min_short_side

    files = image_files(folder)
    exact, fast = Decoder(DecodeMode.EXACT), Decoder(DecodeMode.FAST)
    exact_pixels = np.stack([exact.model_input(path.read_bytes()) for path in files])
    fast_pixels = np.stack([fast.model_input(path.read_bytes()) for path in files])
    reencoded_pixels = np.stack([exact.model_input(_reencoded(path)) for path in files])
    min_side = fast_min_short_side(exact_pixels.shape[1])
    drafted = sum(draft_jpeg(open_image(path.read_bytes()), min_side) > 1 for path in files)
    reference, candidate = run_batched(runner, exact_pixels), run_batched(runner, fast_pixels)
    agree = reference.argmax(axis=1) == candidate.argmax(axis=1)
    top_two = np.sort(reference, axis=1)[:, -2:]
    decided = (top_two[:, 1] - top_two[:, 0]) > DECIDED_MARGIN
    return FastAgreement(
        images=len(files),
        drafted=int(drafted),
        top1_agreement=float(agree[decided].mean()) if decided.any() else 0.0,
        max_abs_diff=float(np.abs(reference - candidate).max()),
        decided=int(decided.sum()),
        top1_agreement_all=float(agree.mean()),
        reencoded_max_abs_diff=float(np.abs(reference - run_batched(runner, reencoded_pixels)).max()),
    )


def _reencoded(path: Path) -> bytes:
    buffer = io.BytesIO()
    with Image.open(path) as image:
        image.save(buffer, "JPEG", quality=REENCODE_QUALITY)
    return buffer.getvalue()
