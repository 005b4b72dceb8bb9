"""The network being trained: a torchvision classifier of the export's registry
(``export.architectures``) with the head Podium's export infers.

Heads: ``sequential`` (the seeds': Linear(F, 512) -> ReLU -> Dropout -> Linear(512, N), e.g.
keys fc.0.* and fc.3.* on a ResNet) or ``fc`` (a plain Linear(F, N)), F being the network's
pooled features, under its head attribute (``fc`` or ``classifier``). Weights: a local
torchvision ImageNet state_dict of that network, torchvision's download of its default
ImageNet weights (``imagenet``), or none.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from export.architectures import Architecture, architecture
from podium.core.errors import FailedPrecondition, InvalidArgument

HEADS = ("sequential", "fc")
HIDDEN = 512
FROM_SCRATCH_BN_MOMENTUM = 0.1
# --unfreeze's default: the network's last stage (layer4 for ResNets).
LAST_STAGE = "last"


def build_network(num_classes: int, head: str, weights: str, dropout: float, arch: str = "resnet50") -> nn.Module:
    """``arch`` with ``weights`` in its backbone and a fresh head for ``num_classes``."""
    if head not in HEADS:
        raise InvalidArgument(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    network = architecture(arch)
    model = network.build()
    backbone = _backbone_weights(weights, network)
    if backbone is not None:
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        if unexpected or [key for key in missing if not key.startswith(network.head + ".")]:
            raise InvalidArgument(
                f"{weights} is not a torchvision {network.name} state_dict (unexpected keys {unexpected[:5]}, "
                f"missing {[k for k in missing if not k.startswith(network.head + '.')][:5]})"
            )
    if backbone is None:
        _faster_batchnorm_statistics(model)
    features = network.head_features()
    if head == "fc":
        new_head: nn.Module = nn.Linear(features, num_classes)
    else:
        new_head = nn.Sequential(
            nn.Linear(features, HIDDEN), nn.ReLU(), nn.Dropout(dropout), nn.Linear(HIDDEN, num_classes)
        )
    setattr(model, network.head, new_head)
    return model


def _faster_batchnorm_statistics(model: nn.Module) -> None:
    """From scratch, running statistics must follow a network that changes fast: MobileNetV3's
    and EfficientNet's BatchNorm momentum of 0.01 (tuned for long ImageNet runs) left a
    MobileNetV3-Small answering one class for all validation images after 8 epochs (6 %),
    while it reached 90 % with PyTorch's default of 0.1."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
            module.momentum = max(module.momentum, FROM_SCRATCH_BN_MOMENTUM)


def _backbone_weights(weights: str, network: Architecture) -> dict[str, torch.Tensor] | None:
    if weights == "none":
        return None
    if weights == "imagenet":
        from torchvision import models

        default = models.get_model_weights(network.name).DEFAULT
        try:
            state = default.get_state_dict(progress=True)
        except Exception as exc:  # noqa: BLE001 - urllib, certificates, disk: all mean "not downloaded"
            raise FailedPrecondition(
                f"could not download torchvision's ImageNet weights for {network.name} ({type(exc).__name__}: {exc})",
                hint=f"offline? pass --weights PATH with a local copy of {default.url.rsplit('/', 1)[-1]}, "
                "or --weights none",
            ) from None
    else:
        path = Path(weights)
        if not path.is_file():
            raise InvalidArgument(f"--weights {weights}: no such file (or say imagenet or none)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    return {key: value for key, value in state.items() if not key.startswith(network.head + ".")}


def stages_of(arch: str) -> list[str]:
    """The parts of ``arch``'s backbone --unfreeze may name, last first: ResNet's layer4 …
    layer1; for a network with one feature stage, that stage's blocks (features.8 …)."""
    network = architecture(arch)
    if len(network.layout.trainable) > 1:
        return list(network.layout.trainable)
    (stage,) = network.layout.trainable
    blocks = [name for name, _ in getattr(network.meta_model(), stage).named_children()]
    return [f"{stage}.{name}" for name in reversed(blocks)]


def trainable_stages(unfreeze: str, arch: str = "resnet50") -> list[str]:
    """The backbone parts the second phase trains: "last", "layer4", "layer3,layer4", … or "all"."""
    if unfreeze == "all":
        return ["all"]
    stages = stages_of(arch)
    if unfreeze == LAST_STAGE:
        return stages[:1]
    chosen = [part.strip() for part in unfreeze.split(",") if part.strip()]
    unknown = set(chosen) - set(stages)
    if unknown or not chosen:
        raise InvalidArgument(
            f"--unfreeze {unfreeze!r}: name parts of {arch}'s backbone ({', '.join(stages)}), last, or all"
        )
    return chosen


def head_prefix(arch: str) -> str:
    return architecture(arch).head + "."


def set_trainable(model: nn.Module, stages: list[str], arch: str = "resnet50") -> list[nn.Parameter]:
    """Freeze everything but the head and ``stages``; returns the backbone parameters that train."""
    head = head_prefix(arch)
    for name, parameter in model.named_parameters():
        in_stage = any(name.startswith(stage + ".") for stage in stages)
        parameter.requires_grad = name.startswith(head) or "all" in stages or in_stage
    return [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith(head)]
