"""A torchvision ResNet small enough for the unit tier: one BasicBlock per stage.

It has ResNet50's structure where the activation map needs it (layer4, global average
pooling, an ``fc`` head), so ``ExplainingModel`` exports it with its map; at 64 pixels
the map is 2 x 2.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

SIZE = 64


def tiny_resnet(classes: int, seed: int = 0, head_scale: float = 20.0) -> nn.Module:
    """Seeded and in eval mode; ``head_scale`` makes its answers confident (no near-ties)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=classes)
    with torch.no_grad():
        model.fc.weight.mul_(head_scale)
    return model.eval()
