"""The network being trained: torchvision's ResNet50 with the head Podium's export infers.

Heads: ``sequential`` (the seeds': Linear(2048, 512) -> ReLU -> Dropout -> Linear(512, N),
keys fc.0.* and fc.3.*) or ``fc`` (a plain Linear(2048, N)). Weights: a local torchvision
ImageNet state_dict, torchvision's download of IMAGENET1K_V2 (``imagenet``), or none.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from errors import FailedPrecondition, InvalidArgument

HEADS = ("sequential", "fc")
HIDDEN = 512
BACKBONE_FEATURES = 2048
# Stages of ResNet50 that --unfreeze may name, from the top down.
STAGES = ("layer4", "layer3", "layer2", "layer1")


def build_network(num_classes: int, head: str, weights: str, dropout: float) -> nn.Module:
    """A ResNet50 with ``weights`` in its backbone and a fresh head for ``num_classes``."""
    if head not in HEADS:
        raise InvalidArgument(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    model = resnet50(weights=None)
    backbone = _backbone_weights(weights)
    if backbone is not None:
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
            raise InvalidArgument(
                f"{weights} is not a torchvision ResNet50 state_dict (unexpected keys {unexpected[:5]})"
            )
    if head == "fc":
        model.fc = nn.Linear(BACKBONE_FEATURES, num_classes)
    else:
        model.fc = nn.Sequential(
            nn.Linear(BACKBONE_FEATURES, HIDDEN), nn.ReLU(), nn.Dropout(dropout), nn.Linear(HIDDEN, num_classes)
        )
    return model


def _backbone_weights(weights: str) -> dict[str, torch.Tensor] | None:
    if weights == "none":
        return None
    if weights == "imagenet":
        try:
            state = ResNet50_Weights.IMAGENET1K_V2.get_state_dict(progress=True)
        except Exception as exc:  # noqa: BLE001 - urllib, certificates, disk: all mean "not downloaded"
            raise FailedPrecondition(
                f"could not download torchvision's ImageNet weights ({type(exc).__name__}: {exc})",
                hint="offline? pass --weights PATH with a local copy of the IMAGENET1K_V2 file, or --weights none",
            ) from None
    else:
        path = Path(weights)
        if not path.is_file():
            raise InvalidArgument(f"--weights {weights}: no such file (or say imagenet or none)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def trainable_stages(unfreeze: str) -> list[str]:
    """The backbone stages the second phase trains: "layer4", "layer3,layer4" or "all"."""
    if unfreeze == "all":
        return ["all"]
    stages = [part.strip() for part in unfreeze.split(",") if part.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown or not stages:
        raise InvalidArgument(f"--unfreeze {unfreeze!r}: name stages of {', '.join(STAGES)}, or all")
    return stages


def set_trainable(model: nn.Module, stages: list[str]) -> list[nn.Parameter]:
    """Freeze everything but the head and ``stages``; returns the backbone parameters that train."""
    for name, parameter in model.named_parameters():
        in_head = name.startswith("fc.")
        parameter.requires_grad = in_head or "all" in stages or name.split(".")[0] in stages
    return [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("fc.")]
