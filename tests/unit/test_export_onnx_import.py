"""An ONNX classifier brought as is: wrapped into the served form, checked against the original,
and refused with a reason when it cannot be (small graphs, onnxruntime in process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from export import ExportError, export_onnx
from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME
from podium.stores.modelrepo import onnx_session

CLASSES = 4


class Tiny(nn.Module):
    """A small convolutional classifier: float NCHW (or NHWC) in, logits (or probabilities) out."""

    def __init__(self, channels_last: bool = False, softmax: bool = False) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.channels_last, self.softmax = channels_last, softmax
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8, CLASSES)
        with torch.no_grad():
            self.fc.weight.mul_(30)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        # Traced without a dynamic axis, the batch size becomes a constant of the Reshape.
        logits = self.fc(self.body(x).reshape(x.shape[0], -1))
        return torch.softmax(logits, dim=1) if self.softmax else logits


def write_onnx(path: Path, module: nn.Module, side: int = 64, dynamic: bool = True) -> Path:
    shape = (1, side, side, 3) if getattr(module, "channels_last", False) else (1, 3, side, side)
    axes = {"x": {0: "n"}, "y": {0: "n"}} if dynamic else None
    torch.onnx.export(
        module.eval(), (torch.zeros(shape),), str(path), input_names=["x"], output_names=["y"],
        dynamic_axes=axes, opset_version=17, dynamo=False,
    )  # fmt: skip
    return path


def colour_pictures(count: int, side: int) -> np.ndarray:
    """Pictures of different colours (with noise), so that a small model's answers differ."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (count, 1, 1, 3))
    return np.clip(base + rng.integers(-20, 21, (count, side, side, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"class {i}\n" for i in range(CLASSES)), encoding="utf-8")
    return path


def served_and_original(result, original: Path, pixels: np.ndarray, mean, std, channels_first: bool, softmax: bool):
    (served,) = onnx_session(result.onnx_path).run([OUTPUT_NAME], {INPUT_NAME: pixels})
    x = (pixels.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std)
    if channels_first:
        x = x.transpose(0, 3, 1, 2)
    (answer,) = onnx_session(original).run(["y"], {"x": x})
    if not softmax:
        answer = np.exp(answer - answer.max(axis=1, keepdims=True))
        answer /= answer.sum(axis=1, keepdims=True)
    return served, answer


def test_a_torch_exported_nchw_classifier_is_served_as_brought(tmp_path: Path, labels: Path):
    original = write_onnx(tmp_path / "tiny.onnx", Tiny(), side=64)
    result = export_onnx(onnx_path=original, model_repository=tmp_path / "repo", labels=labels, model_name="tiny")
    meta = result.metadata
    assert (meta.architecture, meta.cam_name, meta.classes[0]) == ("onnx", "", "class 0")
    assert (meta.preprocessing.crop, meta.preprocessing.resize) == (64, 73)  # the graph's side, ImageNet's ratio
    assert result.fidelity["top1_agreement"] == 1.0 and result.fidelity["max_abs_diff"] <= 1e-5
    pixels = colour_pictures(6, 64)
    served, expected = served_and_original(
        result, original, pixels, meta.preprocessing.mean, meta.preprocessing.std, True, False
    )
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert len(set(served.argmax(axis=1))) > 1
    config = (result.model_dir / "config.pbtxt").read_text()
    assert (
        "cam" not in json.loads((result.model_dir / "1" / "podium.json").read_text())["cam_name"]
        and "uint8" in config.lower()
    )


def test_a_keras_like_nhwc_model_with_probabilities_and_its_own_normalisation(tmp_path: Path, labels: Path):
    original = write_onnx(tmp_path / "keras.onnx", Tiny(channels_last=True, softmax=True), side=48)
    result = export_onnx(
        onnx_path=original, model_repository=tmp_path / "repo", labels=labels, model_name="keras",
        outputs="probabilities", preprocessing={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "resize": 48},
    )  # fmt: skip
    pixels = colour_pictures(3, 48)
    served, expected = served_and_original(result, original, pixels, (0.5,) * 3, (0.5,) * 3, False, True)
    np.testing.assert_allclose(served, expected, atol=1e-6)
    with pytest.raises(ExportError, match="are probabilities already .*pass --outputs probabilities"):
        export_onnx(onnx_path=original, model_repository=tmp_path / "repo", labels=labels, model_name="k2")


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (
            lambda p: write_onnx(p, Tiny(), side=64),
            {"preprocessing": {"crop": 224}},
            "takes 64x64 images; pass --crop 64",
        ),
        (lambda p: write_onnx(p, Tiny(), side=64, dynamic=False), {}, "is its batch axis dynamic"),
        (lambda p: write_onnx(p, Tiny(), side=64), {"target": "cpu-int8"}, "use --target cpu, cpu-ort, gpu or gpu-ort"),
        (lambda p: write_onnx(p, Tiny(), side=64), {"outputs": "scores"}, "--outputs is logits or probabilities"),
        (lambda p: (p.write_bytes(b"not onnx"), p)[1], {}, "is not a readable ONNX model"),
    ],
    ids=["fixed side", "fixed batch", "int8", "outputs", "garbage"],
)
def test_what_cannot_be_served_is_refused_with_a_reason(tmp_path: Path, labels: Path, make, kwargs, message):
    path = make(tmp_path / "model.onnx")
    with pytest.raises(ExportError, match=message):
        export_onnx(onnx_path=path, model_repository=tmp_path / "repo", labels=labels, model_name="m", **kwargs)
    assert not (tmp_path / "repo" / "m").exists()


def test_class_count_must_match_the_labels(tmp_path: Path):
    path = write_onnx(tmp_path / "tiny.onnx", Tiny())
    few = tmp_path / "few.txt"
    few.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ExportError, match="answers 4 classes but .*few.txt names 2"):
        export_onnx(onnx_path=path, model_repository=tmp_path / "repo", labels=few, model_name="m")
