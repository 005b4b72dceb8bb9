"""Infer a ResNet50 classification head (``fc``) from the keys and shapes of a state_dict.

Two shapes of head are supported, as produced by the fine-tuning recipes Podium serves:

* a plain ``Linear(2048, N)``: keys ``fc.weight``, ``fc.bias``;
* an ``nn.Sequential`` of Linear/ReLU/Dropout layers, e.g.
  ``Sequential(Linear(2048, H), ReLU(), Dropout(p), Linear(H, N))``: keys ``fc.0.*``, ``fc.3.*``.

ReLU and Dropout hold no parameters, so they leave no keys; the positions between two Linear
layers are filled with a ReLU followed by Dropouts, and positions before the first Linear
with Dropouts. Dropout's probability is not recorded in a state_dict and does not matter in
eval mode, which is the only mode an exported model runs in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from export.errors import ExportError

HEAD_PREFIX = "fc."
# Width of ResNet50's pooled features, the input of its head.
BACKBONE_FEATURES = 2048
RELU = "ReLU"
DROPOUT = "Dropout"
_LINEAR_PARAMS = {"weight", "bias"}
_EXPECTED = (
    "expected a Linear(2048, N) head (keys fc.weight, fc.bias) or a Sequential of "
    "Linear/ReLU/Dropout layers (keys fc.0.weight, fc.0.bias, fc.3.weight, ...)"
)


@dataclass(frozen=True)
class LinearSpec:
    """One Linear layer of the head."""

    in_features: int
    out_features: int
    bias: bool = True

    def __str__(self) -> str:
        suffix = "" if self.bias else ", bias=False"
        return f"Linear({self.in_features}, {self.out_features}{suffix})"


@dataclass(frozen=True)
class HeadSpec:
    """The head's layers in order; ``sequential`` says whether it sits in an nn.Sequential."""

    layers: tuple[LinearSpec | str, ...]
    sequential: bool

    @property
    def linears(self) -> list[LinearSpec]:
        return [layer for layer in self.layers if isinstance(layer, LinearSpec)]

    @property
    def num_classes(self) -> int:
        return self.linears[-1].out_features

    def build(self) -> nn.Module:
        """A freshly initialised module whose state_dict keys match the checkpoint's."""
        modules = [_build_layer(layer) for layer in self.layers]
        return nn.Sequential(*modules) if self.sequential else modules[0]

    def describe(self) -> str:
        """Human-readable form, recorded in the model's metadata."""
        inner = ", ".join(str(layer) for layer in self.layers)
        return f"Sequential({inner})" if self.sequential else inner


def plain_head(num_classes: int) -> HeadSpec:
    """The head of torchvision's ResNet50 with N classes: a single Linear(2048, N)."""
    return HeadSpec(layers=(LinearSpec(BACKBONE_FEATURES, num_classes),), sequential=False)


def infer_head(state_dict: dict[str, torch.Tensor]) -> HeadSpec:
    """Work out the head's layers from the ``fc.*`` entries of a ResNet50 state_dict."""
    params = {k[len(HEAD_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(HEAD_PREFIX)}
    if not params:
        raise ExportError(f"the checkpoint has no classification head (no fc.* keys); {_EXPECTED}")
    if set(params) & _LINEAR_PARAMS:
        head = HeadSpec(layers=(_linear_spec("fc", params),), sequential=False)
    else:
        head = _infer_sequential(params)
    _check_chain(head)
    return head


def _infer_sequential(params: dict[str, torch.Tensor]) -> HeadSpec:
    groups: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in params.items():
        index, _, name = key.partition(".")
        if not index.isdigit() or not name:
            raise ExportError(f"unexpected head key fc.{key}; {_EXPECTED}")
        groups.setdefault(int(index), {})[name] = value
    linears = {index: _linear_spec(f"fc.{index}", group) for index, group in groups.items()}
    layers: list[LinearSpec | str] = []
    previous = -1
    for index in sorted(linears):
        gap = index - previous - 1
        if previous < 0:
            layers.extend([DROPOUT] * gap)
        elif gap > 0:
            layers.extend([RELU] + [DROPOUT] * (gap - 1))
        layers.append(linears[index])
        previous = index
    return HeadSpec(layers=tuple(layers), sequential=True)


def _linear_spec(name: str, params: dict[str, torch.Tensor]) -> LinearSpec:
    found = ", ".join(f"{name}.{k} {tuple(v.shape)}" for k, v in sorted(params.items()))
    weight, bias = params.get("weight"), params.get("bias")
    if set(params) - _LINEAR_PARAMS or weight is None or weight.dim() != 2:
        raise ExportError(
            f"{name} is not a Linear layer (found {found}); only Linear, ReLU and Dropout "
            f"layers are supported in the head; {_EXPECTED}"
        )
    out_features, in_features = weight.shape
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ExportError(f"{name}: bias shape does not match weight (found {found})")
    return LinearSpec(int(in_features), int(out_features), bias=bias is not None)


def _check_chain(head: HeadSpec) -> None:
    expected = BACKBONE_FEATURES
    for position, linear in enumerate(head.linears):
        if linear.in_features != expected:
            where = "the first Linear" if position == 0 else f"Linear number {position + 1}"
            source = "ResNet50's 2048 pooled features" if position == 0 else "the previous Linear"
            raise ExportError(
                f"head {head.describe()}: {where} takes {linear.in_features} inputs, but "
                f"{source} give {expected}; is this checkpoint a ResNet50 with this head?"
            )
        expected = linear.out_features


def _build_layer(layer: LinearSpec | str) -> nn.Module:
    if isinstance(layer, LinearSpec):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    return nn.ReLU() if layer == RELU else nn.Dropout()
