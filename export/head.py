"""Infer a classifier's head from the keys and shapes of a state_dict.

The head sits under the architecture's head attribute (``fc`` for ResNets and RegNets,
``classifier`` for the others; see ``export.architectures``). Three shapes are supported:

* torchvision's own head for the network with N classes (MobileNetV3's Linear, Hardswish,
  Dropout, Linear; ConvNeXt's LayerNorm2d, Flatten, Linear; VGG's three Linears; ...):
  kept as torchvision builds it, its last Linear resized;
* a plain ``Linear(F, N)`` on the F pooled features: keys ``fc.weight``, ``fc.bias``;
* an ``nn.Sequential`` of Linear, BatchNorm1d, ReLU and Dropout layers (the fine-tuning
  heads of the source projects), e.g. ``Sequential(Linear(2048, H), ReLU(), Dropout(p),
  Linear(H, N))``: keys ``fc.0.*``, ``fc.3.*``.

ReLU and Dropout hold no parameters, so they leave no keys: between two Linear layers the
first empty position is a ReLU and the others Dropouts; empty positions before the first
parameterised layer are Dropouts. Dropout's probability is not recorded in a state_dict
and does not matter in eval mode, the only mode an exported model runs in.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from export.architectures import ARCHITECTURES, Architecture
from export.errors import ExportError

RELU = "ReLU"
DROPOUT = "Dropout"
_LINEAR_PARAMS = {"weight", "bias"}
_BATCH_NORM_PARAMS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_RESNET50 = ARCHITECTURES["resnet50"]


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
class BatchNormSpec:
    features: int

    def __str__(self) -> str:
        return f"BatchNorm1d({self.features})"


@dataclass(frozen=True)
class HeadSpec:
    """The head's layers in order; ``sequential`` says whether it sits in an nn.Sequential;
    ``native``: torchvision's own head of ``arch``, its last Linear giving N classes."""

    layers: tuple[LinearSpec | BatchNormSpec | str, ...]
    sequential: bool
    arch: str = _RESNET50.name
    native: bool = False

    @property
    def linears(self) -> list[LinearSpec]:
        return [layer for layer in self.layers if isinstance(layer, LinearSpec)]

    @property
    def num_classes(self) -> int:
        return self.linears[-1].out_features

    def build(self, model: nn.Module | None = None) -> nn.Module:
        """A freshly initialised head whose state_dict keys match the checkpoint's (a native
        head is ``model``'s own, its last Linear resized)."""
        if self.native:
            if model is None:
                raise ValueError("a native head is built from its network")
            head = copy.deepcopy(getattr(model, ARCHITECTURES[self.arch].head))
            position = max(i for i, m in enumerate(head) if isinstance(m, nn.Linear))
            head[position] = _build_layer(self.linears[-1])
            return head
        modules = [_build_layer(layer) for layer in self.layers]
        return nn.Sequential(*modules) if self.sequential else modules[0]

    def describe(self) -> str:
        """Human-readable form, recorded in the model's metadata."""
        inner = ", ".join(str(layer) for layer in self.layers)
        return f"Sequential({inner})" if self.sequential else inner


def infer_head(state_dict: dict[str, torch.Tensor], arch: Architecture = _RESNET50) -> HeadSpec:
    """Work out the head's layers from the head entries of ``arch``'s state_dict."""
    prefix = arch.head + "."
    params = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not params:
        raise ExportError(f"the checkpoint has no classification head (no {prefix}* keys); {_expected(arch)}")
    native = _native_head(params, arch)
    if native is not None:
        return native
    if set(params) & _LINEAR_PARAMS:
        head = HeadSpec(layers=(_layer_spec(arch.head, params),), sequential=False, arch=arch.name)
    else:
        head = _infer_sequential(params, arch)
    _check_chain(head, arch)
    return head


def _native_head(params: dict[str, torch.Tensor], arch: Architecture) -> HeadSpec | None:
    """torchvision's own head for ``arch`` with another class count, if that is what this is."""
    prefix = arch.head + "."
    reference = {k[len(prefix) :]: v for k, v in arch.reference_shapes().items() if k.startswith(prefix)}
    if set(reference) != set(params) or not all(k.partition(".")[0].isdigit() for k in reference):
        return None  # a plain Linear head is the general case below
    last = max(reference, key=lambda k: int(k.partition(".")[0]))
    last_index = last.partition(".")[0]
    for key, shape in reference.items():
        got = tuple(params[key].shape)
        expected = tuple(shape)
        if key.startswith(last_index + "."):
            expected = got[:1] + expected[1:]  # the class count is the checkpoint's
        if got != expected:
            return None
    layers: list[LinearSpec | BatchNormSpec | str] = []
    for index, layer in enumerate(arch.meta_head()):
        if isinstance(layer, nn.Linear):
            weight = params[f"{index}.weight"]
            layers.append(LinearSpec(int(weight.shape[1]), int(weight.shape[0]), bias=f"{index}.bias" in params))
        else:
            layers.append(type(layer).__name__)
    return HeadSpec(layers=tuple(layers), sequential=True, arch=arch.name, native=True)


def _infer_sequential(params: dict[str, torch.Tensor], arch: Architecture) -> HeadSpec:
    groups: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in params.items():
        index, _, name = key.partition(".")
        if not index.isdigit() or not name:
            raise ExportError(f"unexpected head key {arch.head}.{key}; {_expected(arch)}")
        groups.setdefault(int(index), {})[name] = value
    specs = {index: _layer_spec(f"{arch.head}.{index}", group) for index, group in groups.items()}
    layers: list[LinearSpec | BatchNormSpec | str] = []
    previous, activated = -1, True
    for index in sorted(specs):
        gap = index - previous - 1
        if gap and not activated:  # the first empty place after a Linear: its activation
            layers.extend([RELU] + [DROPOUT] * (gap - 1))
            activated = True
        else:
            layers.extend([DROPOUT] * gap)
        layers.append(specs[index])
        if isinstance(specs[index], LinearSpec):
            activated = False
        previous = index
    return HeadSpec(layers=tuple(layers), sequential=True, arch=arch.name)


def _layer_spec(name: str, params: dict[str, torch.Tensor]) -> LinearSpec | BatchNormSpec:
    found = ", ".join(f"{name}.{k} {tuple(v.shape)}" for k, v in sorted(params.items()))
    weight, bias = params.get("weight"), params.get("bias")
    if "running_mean" in params and set(params) <= _BATCH_NORM_PARAMS and weight is not None and weight.dim() == 1:
        return BatchNormSpec(int(weight.shape[0]))
    if set(params) - _LINEAR_PARAMS or weight is None or weight.dim() != 2:
        raise ExportError(
            f"{name} is not a Linear layer (found {found}); only Linear, BatchNorm1d, ReLU and Dropout "
            "layers are supported in a head other than torchvision's own"
        )
    out_features, in_features = weight.shape
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ExportError(f"{name}: bias shape does not match weight (found {found})")
    return LinearSpec(int(in_features), int(out_features), bias=bias is not None)


def _check_chain(head: HeadSpec, arch: Architecture) -> None:
    expected = arch.head_features()
    linear_number = 0
    for layer in head.layers:
        if isinstance(layer, BatchNormSpec) and layer.features != expected:
            raise ExportError(f"head {head.describe()}: {layer} follows {expected} features")
        if not isinstance(layer, LinearSpec):
            continue
        if layer.in_features != expected:
            where = "the first Linear" if linear_number == 0 else f"Linear number {linear_number + 1}"
            source = f"{arch.name}'s {expected} pooled features" if linear_number == 0 else "the previous Linear"
            raise ExportError(
                f"head {head.describe()}: {where} takes {layer.in_features} inputs, but "
                f"{source} give {expected}; is this checkpoint a {arch.name} with this head?"
            )
        expected = layer.out_features
        linear_number += 1


def _expected(arch: Architecture) -> str:
    return (
        f"expected a Linear({arch.head_features()}, N) head (keys {arch.head}.weight, {arch.head}.bias), "
        f"torchvision's own {arch.name} head, or a Sequential of Linear/BatchNorm1d/ReLU/Dropout layers "
        f"(keys {arch.head}.0.weight, {arch.head}.0.bias, {arch.head}.3.weight, ...)"
    )


def _build_layer(layer: LinearSpec | BatchNormSpec | str) -> nn.Module:
    if isinstance(layer, LinearSpec):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if isinstance(layer, BatchNormSpec):
        return nn.BatchNorm1d(layer.features)
    return nn.ReLU() if layer == RELU else nn.Dropout()
