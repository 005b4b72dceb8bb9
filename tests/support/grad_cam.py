"""Grad-CAM by autograd, written for the tests apart from the export's closed form.

As the ``grad-cam`` package computes it for a ResNet's ``layer4``: hooks keep the layer's
output and the gradient flowing back into it, the score of the class is back-propagated
through the whole network, each feature map is weighed by its mean gradient, the sum is
ReLU'd and scaled so that its maximum is 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> the ImageNet-normalised float NCHW a ResNet reads."""
    return (pixels.permute(0, 3, 1, 2).to(torch.float32) / 255.0 - MEAN) / STD


def grad_cam(model: nn.Module, pixels: np.ndarray, classes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(maps ``[N, h, w]``, the classes they explain) for uint8 NHWC pixels; top-1 unless ``classes``."""
    return grad_cam_of_inputs(model, normalise(torch.from_numpy(pixels)), classes)


def grad_cam_of_inputs(
    model: nn.Module, inputs: torch.Tensor, classes: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """As grad_cam, for inputs already transformed for the network (normalised float NCHW)."""
    maps, explained = [], []
    kept: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        kept["activation"] = output
        output.register_hook(lambda gradient: kept.__setitem__("gradient", gradient))

    for index in range(len(inputs)):
        handle = model.layer4.register_forward_hook(keep)
        try:
            model.zero_grad(set_to_none=True)
            logits = model.eval()(inputs[index : index + 1])
            chosen = int(logits.argmax()) if classes is None else classes[index]
            logits[0, chosen].backward()
        finally:
            handle.remove()
        weights = kept["gradient"].mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * kept["activation"]).sum(dim=1))[0].detach()
        peak = cam.max()
        maps.append((cam / peak if peak > 0 else cam).numpy())
        explained.append(chosen)
    return np.stack(maps), np.array(explained)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two maps (1 for two equal flat ones)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])
