"""Grad-CAM of the top-1 class, computed inside the served graph without autograd.

Behind ResNet50's global average pooling every spatial cell of the last feature maps
A (``[B, 2048, h, w]``) gets the same gradient, ∂y_c/∂A_k(ij) = (1/hw) ∂y_c/∂p_k, where
p is the pooled feature vector. Grad-CAM (Selvaraju et al., 2017) weighs A_k by the mean
of that gradient, so its weights are just ∂y_c/∂p, which for a head of Linear, ReLU and
Dropout layers is a closed form: back from the last Linear's row W[c], through each ReLU
as the mask 1[h > 0] of its input, and each Linear as a product with its weight.
For a plain ``fc`` head the weights are W[c] and the map is CAM (Zhou et al., 2016):
mean(Σ_k W[c,k] A_k) + b_c is the logit of class c.

The map is ReLU'd and scaled so that its maximum is 1 (all zeros when nothing in the
image speaks for the class); the constant 1/hw disappears in that scaling. Everything
is Gather, Greater, Cast, Mul, MatMul and a ReduceMax in ONNX: TensorRT and the INT8
quantiser's exclusions handle it like the head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from export.errors import ExportError
from export.serving_model import ServingModel

_RESNET_STEM = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class ExplainingModel(ServingModel):
    """A ServingModel over a torchvision ResNet that also answers the top-1 class's map.

    ``[B, H, W, 3]`` uint8 -> (``[B, N]`` softmax probabilities, ``[B, H/32, W/32]`` map).
    """

    def __init__(self, classifier: nn.Module, **normalisation: tuple[float, float, float]) -> None:
        missing = [name for name in (*_RESNET_STEM, "avgpool", "fc") if not hasattr(classifier, name)]
        if missing:
            raise ExportError(f"class activation maps need a torchvision ResNet; the model lacks {', '.join(missing)}")
        super().__init__(classifier, **normalisation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        pooled = torch.flatten(self.classifier.avgpool(features), 1)
        logits, weights = logits_and_class_gradient(self.classifier.fc, pooled)
        return torch.softmax(logits, dim=1), normalised_map(weighted_sum(weights, features))

    def explain(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 pixels -> (probabilities, maps), as numpy."""
        with torch.inference_mode():
            probabilities, maps = self.eval()(torch.from_numpy(pixels))
        return probabilities.numpy(), maps.numpy()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last feature maps A, as torchvision's ResNet.forward computes them."""
        x = self.normalised(images)
        for name in _RESNET_STEM:
            x = getattr(self.classifier, name)(x)
        return x


def logits_and_class_gradient(head: nn.Module, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's logits and ∂logit_c/∂pooled for each row's top-1 class c, in closed form."""
    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise ExportError("class activation maps need a head that ends in a Linear layer")
    masks: dict[int, torch.Tensor] = {}
    x = pooled
    for position, layer in enumerate(layers):
        if isinstance(layer, nn.ReLU):
            masks[position] = (x > 0).to(x.dtype)
        elif not isinstance(layer, (nn.Linear, nn.Dropout)):
            raise ExportError(f"class activation maps support Linear, ReLU and Dropout head layers, not {layer}")
        x = layer(x)
    logits = x
    top1 = torch.argmax(logits, dim=1)
    gradient = layers[-1].weight[top1]
    for position in range(len(layers) - 2, -1, -1):
        layer = layers[position]
        if isinstance(layer, nn.Linear):
            gradient = gradient @ layer.weight
        elif position in masks:
            gradient = gradient * masks[position]
        # Dropout is the identity in eval mode, the only mode a served model runs in.
    return logits, gradient


def weighted_sum(weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[b, k] · features[b, k] -> ``[B, h, w]`` (the map before ReLU and scaling)."""
    batch, channels, height, width = features.shape
    summed = torch.matmul(weights.unsqueeze(1), features.reshape(batch, channels, height * width))
    return summed.reshape(batch, height, width)


def normalised_map(raw: torch.Tensor) -> torch.Tensor:
    """ReLU, then divide by the maximum; a map with no positive cell stays all zeros."""
    positive = torch.relu(raw)
    peak = torch.amax(positive, dim=(1, 2), keepdim=True)
    # where(), not a small epsilon: an epsilon underflows in FP16 engines and 0/0 is NaN.
    return positive / torch.where(peak > 0, peak, torch.ones_like(peak))


def autograd_grad_cam(model: ExplainingModel, pixels: np.ndarray) -> np.ndarray:
    """Grad-CAM of each image's top-1 class by autograd through torchvision's own forward.

    The reference the graph's closed form is checked against: ``layer4``'s output is caught
    by a forward hook and the top-1 logit differentiated with respect to it. The backbone
    runs without a graph (its parameters are frozen for the call), so memory stays small.
    """
    classifier = model.classifier.eval()
    caught: list[torch.Tensor] = []

    def catch(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        caught.append(output.detach().requires_grad_(True))
        return caught[-1]

    trainable = [p for p in classifier.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    handle = classifier.layer4.register_forward_hook(catch)
    try:
        with torch.enable_grad():
            logits = classifier(model.normalised(torch.from_numpy(pixels)))
            chosen = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
            (gradient,) = torch.autograd.grad(chosen, caught[-1])
    finally:
        handle.remove()
        for parameter in trainable:
            parameter.requires_grad_(True)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    return normalised_map((weights * caught[-1]).sum(dim=1)).detach().numpy()
