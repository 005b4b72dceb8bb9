"""A stand-in ResNet50 with steady answers, for measuring approximations without a trained one.

A plain random ResNet50 is chaotic: ±1 grey level on the input changes its top-1 on ~15% of
photographs, so nothing approximate (INT8, fast decoding, FP16) could ever agree with it.
This one has its residual branches damped (bn3 scale 0.2), BatchNorm statistics from real
photographs and a scaled random head: its answers differ from photograph to photograph and
survive small perturbations, as a trained network's do (bfloat16 changes none of them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.resnet import Bottleneck

from export.serving_model import ServingModel
from imaging import preprocess
from samples import bundled_photos

DAMPED_RESIDUAL_SCALE = 0.2
HEAD_SCALE = 40.0  # confident answers


def steady_resnet50(num_classes: int = 8, seed: int = 3) -> nn.Module:
    """A ResNet50 whose answers differ per photograph and survive small perturbations."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet50(weights=None, num_classes=num_classes)
    for block in model.modules():
        if isinstance(block, Bottleneck):
            nn.init.constant_(block.bn3.weight, DAMPED_RESIDUAL_SCALE)
    pixels = np.stack([preprocess(photo.convert("RGB")) for photo in bundled_photos().values()])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the photographs
    with torch.no_grad():
        ServingModel(model).train()(torch.from_numpy(pixels))
        model.fc.weight.mul_(HEAD_SCALE)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def write_steady_checkpoint(path: Path, classes: list[str], seed: int = 3) -> Path:
    """The stand-in's state_dict at ``path`` and its class names at ``path``.labels.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(steady_resnet50(len(classes), seed).state_dict(), path)
    Path(f"{path}.labels.txt").write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    return path
