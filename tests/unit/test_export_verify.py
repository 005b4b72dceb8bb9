"""ONNX-vs-PyTorch verification and the images it runs on, with tiny models (fast)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from export import ExportError
from export.serving_model import ServingModel
from export.torch2onnx import torch2onnx
from export.verify import MAX_VERIFY_IMAGES, SAMPLE_IMAGES, _is_tie, folder_images, sample_images, verify_onnx
from podium.core.errors import InvalidArgument, NotFound
from podium.core.imaging import PreprocessSpec

SPEC = PreprocessSpec(resize=64, crop=56)  # small crops keep these tests fast


@pytest.fixture(scope="module")
def tiny() -> ServingModel:
    torch.manual_seed(0)
    classifier = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
    )
    with torch.no_grad():
        classifier[-1].weight.mul_(20)  # confident answers, so that differences show
    return ServingModel(classifier).eval()


@pytest.fixture(scope="module")
def tiny_onnx(tiny: ServingModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "model.onnx"
    torch2onnx(tiny, path, input_size=SPEC.crop)
    return path


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, np.ndarray]]:
    return sample_images(SPEC)


def test_bundled_photographs_load_offline(photos):
    assert [name for name, _ in photos] == [f"skimage:{name}" for name in SAMPLE_IMAGES]
    for _, pixels in photos:
        assert pixels.shape == (SPEC.crop, SPEC.crop, 3) and pixels.dtype == np.uint8


def test_faithful_export_passes_with_figures(tiny, tiny_onnx, photos):
    fidelity = verify_onnx(tiny, tiny_onnx, photos)
    assert fidelity["reference"] == "pytorch-fp32"
    assert fidelity["images"] == [name for name, _ in photos]
    assert fidelity["top1_agreement"] == 1.0
    assert 0.0 <= fidelity["mean_abs_diff"] <= fidelity["max_abs_diff"] <= 1e-4


def test_different_model_is_caught(tiny, tiny_onnx, photos):
    other = copy.deepcopy(tiny)
    with torch.no_grad():
        other.classifier[0].bias.add_(0.5)
    with pytest.raises(ExportError, match=r"max \|Δprobability\| .* > 0\.001 \(worst image skimage:"):
        verify_onnx(other, tiny_onnx, photos)


def test_top1_flip_is_caught_even_within_tolerance(tiny, tiny_onnx, photos):
    swapped = copy.deepcopy(tiny)
    with torch.no_grad():  # reverse the class order: every top-1 changes
        swapped.classifier[-1].weight.copy_(swapped.classifier[-1].weight.flip(0))
        swapped.classifier[-1].bias.copy_(swapped.classifier[-1].bias.flip(0))
    with pytest.raises(ExportError, match="top-1 class differs from PyTorch"):
        verify_onnx(swapped, tiny_onnx, photos, tolerance=1.0, tie_gap=0.0)


def test_ties_are_not_flips():
    assert _is_tie(np.array([0.35, 0.30, 0.34996]), gap=1e-4)
    assert not _is_tie(np.array([0.5, 0.3, 0.2]), gap=1e-4)


def save_image(path: Path, size: tuple[int, int], mode: str = "RGB", fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(size))
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(path, fmt)


def test_folder_images_skip_junk_and_spread_over_classes(tmp_path: Path):
    for index in range(4):
        save_image(tmp_path / "archery" / f"{index}.jpg", (300 + index, 200), fmt="JPEG")
        save_image(tmp_path / "bmx" / f"{index}.png", (120, 500), mode="L")
    (tmp_path / "bmx" / "notes.txt").write_text("not an image")
    (tmp_path / "archery" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    save_image(tmp_path / ".cache" / "hidden.png", (64, 64))
    images = folder_images(tmp_path, SPEC, limit=4)
    names = [name for name, _ in images]
    assert len(names) == 4
    assert {name.split("/")[0] for name in names} == {"archery", "bmx"}
    assert not any(".cache" in name or name.endswith((".txt", "broken.jpg")) for name in names)
    assert all(pixels.shape == (SPEC.crop, SPEC.crop, 3) for _, pixels in images)
    assert len(folder_images(tmp_path, SPEC)) == 8 <= MAX_VERIFY_IMAGES


def test_folder_without_images(tmp_path: Path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(InvalidArgument, match="no decodable images"):
        folder_images(tmp_path, SPEC)
    with pytest.raises(NotFound, match="does not exist"):
        folder_images(tmp_path / "missing", SPEC)
