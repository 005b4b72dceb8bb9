"""The torchvision classifiers Podium exports, and how to tell them apart by their state_dict.

Each entry says how the network is laid out around its head: the modules that compute the
last feature maps (what class activation maps are made of), how those are pooled, and
the attribute that holds the head. Its default transform is that of torchvision's
IMAGENET1K_V1 weights for the network (what a fine-tuning recipe most likely used); the
stages are what ``podium train`` may unfreeze, last first.

``detect`` compares a checkpoint's backbone keys and shapes with each entry's, built on
the meta device (no memory, no initialisation): ResNet50 and ResNet101 differ in keys,
ResNet50, Wide ResNet-50 and ResNeXt-50 in shapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from export.errors import ExportError
from podium.core.imaging import PreprocessSpec
from podium.core.modelmeta.networks import NETWORK_FAMILIES

BATCHES_TRACKED = "num_batches_tracked"
_META_LOCK = threading.Lock()
_SHOWN = 5


@dataclass(frozen=True)
class Layout:
    """Where a family's parts sit: ``stages`` run in order give the last feature maps."""

    stages: tuple[str, ...]
    head: str
    pool: str | None  # the pooling module's attribute; None: global average pooling
    relu_features: bool = False  # DenseNet applies a ReLU to its features before pooling
    trainable: tuple[str, ...] = ()  # podium train's unfreezable stages, last first


RESNET = Layout(
    ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"),
    "fc",
    "avgpool",
    trainable=("layer4", "layer3", "layer2", "layer1"),
)
REGNET = Layout(("stem", "trunk_output"), "fc", "avgpool", trainable=("trunk_output",))
FEATURES = Layout(("features",), "classifier", "avgpool", trainable=("features",))
GLOBAL_POOLED_FEATURES = Layout(("features",), "classifier", None, trainable=("features",))
DENSENET = Layout(("features",), "classifier", None, relu_features=True, trainable=("features",))

_LAYOUTS = {
    "resnet": RESNET,
    "efficientnet": FEATURES,
    "mobilenet_v2": GLOBAL_POOLED_FEATURES,
    "mobilenet_v3": FEATURES,
    "vgg": FEATURES,
    "convnext": FEATURES,
    "regnet": REGNET,
    "densenet": DENSENET,
}


@dataclass(frozen=True)
class Architecture:
    name: str  # torchvision's builder name
    family: str
    layout: Layout

    @property
    def head(self) -> str:
        return self.layout.head

    def build(self, num_classes: int = 1000) -> nn.Module:
        """A freshly initialised network with torchvision's own head."""
        from torchvision import models

        return models.get_model(self.name, weights=None, num_classes=num_classes)

    def transform(self) -> PreprocessSpec:
        """The eval transform of torchvision's IMAGENET1K_V1 weights for this network."""
        from torchvision import models

        weights = models.get_model_weights(self.name)
        transforms = weights["IMAGENET1K_V1"].transforms()
        return PreprocessSpec(
            resize=int(transforms.resize_size[0]),
            crop=int(transforms.crop_size[0]),
            interpolation=transforms.interpolation.value,
        )

    def reference_shapes(self) -> dict[str, torch.Size]:
        """Every state_dict key of the network and its shape (head included)."""
        return dict(_shapes(self.name))

    def backbone_shapes(self) -> dict[str, torch.Size]:
        prefix = self.head + "."
        return {key: shape for key, shape in _shapes(self.name) if not key.startswith(prefix)}

    def meta_model(self) -> nn.Module:
        """The network with its parameters on the meta device: its structure, no memory."""
        with _parameters_on_meta():
            return self.build()

    def meta_head(self) -> nn.Module:
        """torchvision's own head for the network, its parameters on the meta device."""
        return getattr(self.meta_model(), self.head)

    def head_features(self) -> int:
        """The width of the pooled features the head takes."""
        return _head_features(self.name)

    def stem_key(self) -> str:
        """The first convolution's weight: the one key whose shape a grey-input network changes."""
        return next(key for key, shape in _shapes(self.name) if len(shape) == 4)

    def takes_grey(self, state_dict: dict[str, torch.Tensor]) -> bool:
        """The checkpoint's first convolution takes one channel (a network trained on grey images)."""
        weight = state_dict.get(self.stem_key())
        return weight is not None and weight.dim() == 4 and weight.shape[1] == 1

    def grey_stem(self, model: nn.Module) -> None:
        """Give ``model``'s first convolution one input channel, as a grey network's checkpoint has."""
        path = self.stem_key().removesuffix(".weight")
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        conv = getattr(parent, name)
        grey = nn.Conv2d(
            1,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        setattr(parent, name, grey)


ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(name, family, _LAYOUTS[family]) for family, names in NETWORK_FAMILIES.items() for name in names
}


def architecture(name: str) -> Architecture:
    """The registry entry called ``name``; ExportError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ExportError(f"unknown architecture {name!r}; Podium knows {', '.join(ARCHITECTURES)}") from None


def detect(state_dict: dict[str, torch.Tensor], source: str) -> Architecture:
    """The registry network whose backbone keys and shapes are the checkpoint's.

    A missing BatchNorm ``num_batches_tracked`` counter (older checkpoints) does not count."""
    keys = set(state_dict)
    best: tuple[int, Architecture] | None = None
    for arch in ARCHITECTURES.values():
        if not any(key.startswith(arch.head + ".") for key in keys):
            continue
        reference = arch.backbone_shapes()
        backbone = {key for key in keys if not key.startswith(arch.head + ".")}
        missing = {key for key in reference.keys() - backbone if not key.endswith(BATCHES_TRACKED)}
        same_keys = not missing and backbone <= reference.keys()
        if same_keys and all(_same_shape(arch, key, state_dict[key], reference[key]) for key in backbone):
            return arch
        shared = len(reference.keys() & backbone)
        if best is None or shared > best[0]:
            best = (shared, arch)
    raise ExportError(_not_detected(state_dict, source, best))


def backbone_mismatch(arch: Architecture, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Why ``state_dict``'s backbone is not ``arch``'s (empty: it is)."""
    reference = arch.backbone_shapes()
    backbone = {k: v for k, v in state_dict.items() if not k.startswith(arch.head + ".")}
    missing = sorted(k for k in reference.keys() - backbone.keys() if not k.endswith(BATCHES_TRACKED))
    unexpected = sorted(backbone.keys() - reference.keys())
    wrong = [
        f"{k} {tuple(backbone[k].shape)} ({arch.name}: {tuple(reference[k])})"
        for k in sorted(reference.keys() & backbone.keys())
        if not _same_shape(arch, k, backbone[k], reference[k])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} {arch.name} keys are missing ({some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} keys are not part of {arch.name} ({some(unexpected)})")
    if wrong:
        problems.append(f"{len(wrong)} tensors have the wrong shape ({some(wrong)})")
    return problems


def _same_shape(arch: Architecture, key: str, tensor: torch.Tensor, reference: torch.Size) -> bool:
    """Equal shapes; the first convolution may take one channel instead of three (grey input)."""
    shape = tuple(tensor.shape)
    if shape == tuple(reference):
        return True
    return key == arch.stem_key() and shape == (reference[0], 1, *reference[2:])


def some(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (", ..." if len(items) > _SHOWN else "")


def _not_detected(state_dict: dict, source: str, best: tuple[int, Architecture] | None) -> str:
    message = (
        f"checkpoint {source} is not the state_dict of a torchvision classifier Podium knows: it has "
        f"{len(state_dict)} keys such as {some(sorted(state_dict))}"
    )
    if best is not None and best[0] * 10 >= len(best[1].backbone_shapes()):
        message += f". Closest: {best[1].name}, which it does not match: " + "; ".join(
            backbone_mismatch(best[1], state_dict)
        )
    return message + ". Pass --arch NAME to name the network; `podium export --help` lists them"


@cache
def _shapes(name: str) -> tuple[tuple[str, torch.Size], ...]:
    with _parameters_on_meta():
        model = ARCHITECTURES[name].build()
    return tuple((key, value.shape) for key, value in model.state_dict().items())


@cache
def _head_features(name: str) -> int:
    head = ARCHITECTURES[name].meta_head()
    first = next(module for module in head.modules() if isinstance(module, nn.Linear))
    return int(first.in_features)


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Build modules whose parameters and buffers live on the meta device: keys and shapes
    without memory or initialisation. (``torch.device("meta")`` alone cannot build RegNets:
    their widths are computed with tensors.) It patches ``nn.Module`` for the moment, so a
    lock keeps two such builds apart; nothing else builds modules while an export runs."""
    with _META_LOCK:
        yield from _patched_registration()


def _patched_registration() -> Iterator[None]:
    register_parameter: Callable = nn.Module.register_parameter
    register_buffer: Callable = nn.Module.register_buffer

    def parameter(module, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer(module, name, tensor, persistent=True):
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer
