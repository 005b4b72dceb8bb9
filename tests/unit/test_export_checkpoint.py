"""Checkpoint loading: containers, prefixes, head shapes and the refusals (no ONNX export)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from export import DEFAULT_LABELS, ExportError, export_model
from export.checkpoint import load_model, read_state_dict, untrained_model
from podium.core.errors import PodiumError


@cache
def backbone_state() -> dict[str, torch.Tensor]:
    """A ResNet50 state_dict without its head, built once per test session."""
    torch.manual_seed(123)
    return {k: v for k, v in resnet50(weights=None).state_dict().items() if not k.startswith("fc.")}


def model_with_head(head: nn.Module) -> nn.Module:
    model = resnet50(weights=None)
    model.fc = head
    model.load_state_dict({**backbone_state(), **{f"fc.{k}": v for k, v in head.state_dict().items()}})
    return model.eval()


def sequential_head(classes: int = 100) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2048, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, classes))


def assert_same_outputs(expected: nn.Module, got: nn.Module) -> None:
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(expected.eval()(images), got(images))


def save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_plain_head_loads_strictly(tmp_path: Path):
    original = model_with_head(nn.Linear(2048, 100))
    path = save(tmp_path / "plain.pt", original.state_dict())
    loaded = load_model(path)
    assert loaded.head.describe() == "Linear(2048, 100)"
    assert loaded.head.num_classes == 100
    assert not loaded.untrained
    assert not loaded.model.training
    assert loaded.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_same_outputs(original, loaded.model)


def test_wrapped_data_parallel_sequential_head(tmp_path: Path):
    original = model_with_head(sequential_head())
    state = {f"module.{k}": v for k, v in original.state_dict().items()}
    path = save(tmp_path / "seq.pt", {"model_state_dict": state, "epoch": 12, "best_acc": 0.9})
    loaded = load_model(path)
    assert loaded.head.describe() == "Sequential(Linear(2048, 32), ReLU, Dropout, Linear(32, 100))"
    assert_same_outputs(original, loaded.model)


def test_state_dict_key_and_missing_batchnorm_counters(tmp_path: Path):
    original = model_with_head(nn.Linear(2048, 4))
    state = {k: v for k, v in original.state_dict().items() if not k.endswith("num_batches_tracked")}
    loaded = load_model(save(tmp_path / "old.pt", {"state_dict": state}))
    assert_same_outputs(original, loaded.model)


def test_missing_backbone_keys_are_named(tmp_path: Path):
    state = dict(model_with_head(nn.Linear(2048, 4)).state_dict())
    del state["layer4.2.conv3.weight"]
    path = save(tmp_path / "partial.pt", state)
    with pytest.raises(
        ExportError, match=r"Closest: resnet50.*1 resnet50 keys are missing \(layer4\.2\.conv3\.weight\)"
    ):
        load_model(path)
    with pytest.raises(ExportError, match=r"1 resnet50 keys are missing \(layer4\.2\.conv3\.weight\)"):
        load_model(path, arch="resnet50")


def test_other_resnets_are_detected_and_a_wrong_arch_is_refused(tmp_path: Path):
    original = resnet18(weights=None).eval()
    path = save(tmp_path / "r18.pt", original.state_dict())
    loaded = load_model(path)
    assert (loaded.arch.name, loaded.detected, loaded.head.describe()) == ("resnet18", True, "Linear(512, 1000)")
    assert_same_outputs(original, loaded.model)
    with pytest.raises(ExportError, match="does not match torchvision's resnet50") as raised:
        load_model(path, arch="resnet50")
    assert "wrong shape" in str(raised.value) and "missing" in str(raised.value)


def test_not_a_known_network_at_all(tmp_path: Path):
    path = save(tmp_path / "mlp.pt", nn.Sequential(nn.Linear(4, 4)).state_dict())
    with pytest.raises(ExportError, match="not the state_dict of a torchvision classifier Podium knows: it has 2 keys"):
        load_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, I am a text file\n", "not a readable PyTorch checkpoint"),
        (b"", "not a readable PyTorch checkpoint"),
    ],
)
def test_garbage_files(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=message):
        read_state_dict(path)


def test_pickled_module_list_and_missing_file(tmp_path: Path):
    with pytest.raises(ExportError, match=r"pickled Python objects.*model\.state_dict\(\)"):
        read_state_dict(save(tmp_path / "module.pt", nn.Linear(2, 2)))
    with pytest.raises(ExportError, match="holds a list, not a state_dict"):
        read_state_dict(save(tmp_path / "list.pt", [torch.zeros(1)]))
    with pytest.raises(ExportError, match="entries weights, epoch are not tensors"):
        read_state_dict(save(tmp_path / "meta.pt", {"weights": {"a": torch.zeros(1)}, "epoch": 3}))
    with pytest.raises(ExportError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pt")


def test_untrained_model_is_seeded_and_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    first, second = untrained_model(3), untrained_model(3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert first.untrained and first.checkpoint_sha256 is None
    assert first.head.describe() == "Linear(2048, 3)"
    for (key, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_label_count_must_match_head(tmp_path: Path):
    path = save(tmp_path / "seq.pt", model_with_head(sequential_head(classes=5)).state_dict())
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n\nc\n")
    with pytest.raises(ExportError, match=r"head has 5 outputs but .*labels\.txt names 3 classes"):
        export_model(checkpoint=path, labels=labels, model_repository=tmp_path / "repo")
    with pytest.raises(ExportError, match=rf"5 outputs but the default labels \({DEFAULT_LABELS.name}\) names 100"):
        export_model(checkpoint=path, model_repository=tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "cpu-int8"}, "cpu-int8 needs --calibration DIR"),
        ({"calibration": Path("photos")}, "--calibration is for --target cpu-int8 only"),
        ({"target": "gpu", "max_batch_size": 32}, "the engine profile's maximum"),
        ({"labels": Path("a.txt"), "labels_from": Path("d")}, "not both"),
        ({"target": "tpu"}, "unknown target 'tpu'"),
        ({"checkpoint": None}, "no checkpoint given"),
        ({"untrained": True}, "not both"),
        ({"model_name": "../escape"}, "not usable as a folder name"),
        ({"max_batch_size": 0}, "at least 1"),
    ],
)
def test_argument_errors(tmp_path: Path, kwargs: dict, message: str):
    arguments = {"checkpoint": tmp_path / "ckpt.pt", "model_repository": tmp_path / "repo", **kwargs}
    with pytest.raises(PodiumError, match=message):
        export_model(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preprocessing": {"interpolation": "nearest"}}, "preprocessing: interpolation: Input should be"),
        ({"preprocessing": {"crop": 8}}, "preprocessing: crop: Input should be greater than or equal to 16"),
        ({"arch": "vit_b_16"}, "unknown architecture 'vit_b_16'"),
        ({"arch": "vgg11", "target": "cpu-int8", "calibration": Path("photos")}, "pools to 7x7"),
        ({"preprocessing": {"grayscale": True}, "target": "gpu-dali"}, "decodes in colour"),
    ],
)
def test_network_and_preprocessing_errors_say_what_is_wrong(tmp_path: Path, kwargs: dict, message: str):
    with pytest.raises(ExportError, match=message):
        export_model(checkpoint=None, untrained=True, model_repository=tmp_path / "repo", **kwargs)
    assert not (tmp_path / "repo").exists()
