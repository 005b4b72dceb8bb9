"""Head inference from ``fc.*`` keys: hand-built heads only, no backbone (fast)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from export import ExportError
from export.head import DROPOUT, RELU, LinearSpec, infer_head


def fc_state(head: nn.Module) -> dict[str, torch.Tensor]:
    return {f"fc.{key}": value for key, value in head.state_dict().items()}


def assert_same_function(original: nn.Module, state: dict[str, torch.Tensor]) -> None:
    spec = infer_head(state)
    rebuilt = spec.build()
    rebuilt.load_state_dict({k[len("fc.") :]: v for k, v in state.items()}, strict=True)
    features = torch.randn(5, 2048)
    with torch.no_grad():
        assert torch.equal(original.eval()(features), rebuilt.eval()(features))


def test_plain_linear():
    head = nn.Linear(2048, 7)
    spec = infer_head(fc_state(head))
    assert not spec.sequential
    assert spec.layers == (LinearSpec(2048, 7),)
    assert spec.num_classes == 7
    assert spec.describe() == "Linear(2048, 7)"
    assert_same_function(head, fc_state(head))


def test_fine_tuning_sequential_at_indices_0_and_3():
    head = nn.Sequential(nn.Linear(2048, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 100))
    state = fc_state(head)
    assert sorted(state) == ["fc.0.bias", "fc.0.weight", "fc.3.bias", "fc.3.weight"]
    spec = infer_head(state)
    assert spec.sequential
    assert spec.layers == (LinearSpec(2048, 64), RELU, DROPOUT, LinearSpec(64, 100))
    assert spec.num_classes == 100
    assert spec.describe() == "Sequential(Linear(2048, 64), ReLU, Dropout, Linear(64, 100))"
    assert_same_function(head, state)


def test_deeper_sequential_with_uneven_gaps():
    head = nn.Sequential(
        nn.Dropout(0.1),
        nn.Linear(2048, 128),
        nn.ReLU(),
        nn.Linear(128, 32, bias=False),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Dropout(0.2),
        nn.Linear(32, 5),
    )
    spec = infer_head(fc_state(head))
    assert spec.layers == (
        DROPOUT,
        LinearSpec(2048, 128),
        RELU,
        LinearSpec(128, 32, bias=False),
        RELU,
        DROPOUT,
        DROPOUT,
        LinearSpec(32, 5),
    )
    assert spec.num_classes == 5
    assert_same_function(head, fc_state(head))


def test_adjacent_linears():
    head = nn.Sequential(nn.Linear(2048, 16), nn.Linear(16, 3))
    assert infer_head(fc_state(head)).layers == (LinearSpec(2048, 16), LinearSpec(16, 3))
    assert_same_function(head, fc_state(head))


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (nn.Linear(512, 10), "takes 512 inputs"),  # a ResNet18/34 head
        (nn.Sequential(nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 3)), "first Linear takes 1024"),
        (nn.Sequential(nn.Linear(2048, 64), nn.ReLU(), nn.Linear(32, 3)), "Linear number 2 takes 32"),
        (nn.Sequential(nn.Linear(2048, 64), nn.LayerNorm(64), nn.Linear(64, 3)), "fc.1 is not a Linear"),
    ],
)
def test_unsupported_heads_are_refused(head: nn.Module, message: str):
    with pytest.raises(ExportError, match=message) as raised:
        infer_head(fc_state(head))
    assert any(hint in str(raised.value) for hint in ("expected", "2048", "only Linear"))


def test_no_head_and_odd_keys_are_refused():
    with pytest.raises(ExportError, match="no fc"):
        infer_head({"conv1.weight": torch.zeros(64, 3, 7, 7)})
    with pytest.raises(ExportError, match="unexpected head key fc.head.weight"):
        infer_head({"fc.head.weight": torch.zeros(3, 2048)})
    with pytest.raises(ExportError, match="bias shape"):
        infer_head({"fc.weight": torch.zeros(3, 2048), "fc.bias": torch.zeros(4)})
