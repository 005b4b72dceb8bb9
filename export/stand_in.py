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
from podium.core.imaging import preprocess
from podium.samples import bundled_photos

DAMPED_RESIDUAL_SCALE = 0.2
HEAD_SCALE = 40.0  # confident answers
STEADY_LOGIT_SPREAD = 4.0  # other networks: logits' spread over the photographs


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


def steady_network(name: str, num_classes: int = 8, seed: int = 3, head: nn.Module | None = None) -> nn.Module:
    """Any registry network (``export.architectures``) made steady the same way, without the
    ResNet-only damping: BatchNorm statistics from the bundled photographs (at the network's
    own transform), and a last Linear centred and scaled on what those photographs feed it,
    so that its answers spread over the classes. ``head`` replaces torchvision's own."""
    from export.architectures import architecture

    if name == "resnet50" and head is None:
        return steady_resnet50(num_classes, seed)
    arch = architecture(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = arch.build(num_classes)
        if head is not None:
            setattr(model, arch.head, head)
    spec = arch.transform()
    pixels = np.stack([preprocess(photo.convert("RGB"), spec) for photo in bundled_photos().values()])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    serving = ServingModel(model)
    with torch.no_grad():
        serving.train()(torch.from_numpy(pixels))
    for norm in norms:
        norm.momentum = 0.1
    last = [m for m in getattr(model, arch.head).modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0]))
    with torch.no_grad():
        serving.eval()(torch.from_numpy(pixels))
        hook.remove()
        centred = seen[0] - seen[0].mean(dim=0)
        spread = float((centred @ last.weight.T).std()) or 1.0
        last.weight.mul_(STEADY_LOGIT_SPREAD / spread)
        last.bias.copy_(-(seen[0].mean(dim=0) @ last.weight.T))
    return model.eval()


def write_steady_checkpoint(path: Path, classes: list[str], seed: int = 3, network: str = "resnet50") -> Path:
    """The stand-in's state_dict at ``path`` and its class names at ``path``.labels.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(steady_network(network, len(classes), seed).state_dict(), path)
    Path(f"{path}.labels.txt").write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    return path
