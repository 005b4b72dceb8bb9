"""Grad-CAM of the top-1 class, computed inside the served graph without autograd.

Behind global average pooling every spatial cell of the last feature maps A
(``[B, C, h, w]``) gets the same gradient, ∂y_c/∂A_k(ij) = (1/hw) ∂y_c/∂p_k, where p is
the pooled feature vector. Grad-CAM (Selvaraju et al., 2017) weighs A_k by the mean of
that gradient, so its weights are just ∂y_c/∂p, which for the heads Podium exports is a
closed form: back from the last Linear's row W[c], through each ReLU as the mask
1[h > 0] of its input, Hardswish as its derivative, BatchNorm1d (eval) and LayerNorm as
their Jacobians, and each Linear as a product with its weight. For a plain ``fc`` head the
weights are W[c] and the map is CAM (Zhou et al., 2016): mean(Σ_k W[c,k] A_k) + b_c is
the logit of class c. VGG pools to a 7×7 grid, not to one cell: each pooled cell's
gradient spreads over the cells it averaged, so the mean gradient of A_k is the sum of
its pooled cells' gradients over hw: the weights are that sum, up to the constant.

The map is ReLU'd and scaled so that its maximum is 1 (all zeros when nothing in the
image speaks for the class); constants disappear in that scaling. Everything is Gather,
Greater, Cast, Mul, MatMul and a ReduceMax in ONNX: TensorRT and the INT8 quantiser's
exclusions handle it like the head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from export.architectures import RESNET, Architecture
from export.errors import ExportError
from export.serving_model import ServingModel

_HEAD_LAYERS = "Linear, ReLU, Hardswish, Dropout, BatchNorm1d, LayerNorm and Flatten"


class ExplainingModel(ServingModel):
    """A ServingModel over a torchvision classifier that also answers the top-1 class's map.

    ``[B, H, W, 3]`` uint8 -> (``[B, N]`` softmax probabilities, ``[B, h, w]`` map), where
    h × w is the grid of the network's last feature maps (H/32 for most).
    ``arch`` says how the network is laid out (default: a torchvision ResNet's layout).
    """

    def __init__(
        self, classifier: nn.Module, arch: Architecture | None = None, **normalisation: tuple[float, float, float] | int
    ) -> None:
        self.layout = arch.layout if arch is not None else RESNET
        parts = (*self.layout.stages, self.layout.head, *([self.layout.pool] if self.layout.pool else []))
        missing = [name for name in parts if not hasattr(classifier, name)]
        if missing:
            kind = arch.name if arch is not None else "a torchvision ResNet"
            raise ExportError(f"class activation maps need {kind}; the model lacks {', '.join(missing)}")
        super().__init__(classifier, **normalisation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(images)
        pooled_maps = self.pooled(features)
        logits, gradient = logits_and_class_gradient(self.head, torch.flatten(pooled_maps, 1))
        weights = gradient.reshape(pooled_maps.shape).sum(dim=(2, 3))
        if self.layout.relu_features:  # the ReLU passes the gradient where A > 0 only
            weights = weights * (features > 0).to(features.dtype).mean(dim=(2, 3))
        return torch.softmax(logits, dim=1), normalised_map(weighted_sum(weights, features))

    @property
    def head(self) -> nn.Module:
        return getattr(self.classifier, self.layout.head)

    def explain(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 pixels -> (probabilities, maps), as numpy."""
        with torch.inference_mode():
            probabilities, maps = self.eval()(torch.from_numpy(pixels))
        return probabilities.numpy(), maps.numpy()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last feature maps A: the output of the network's last stage."""
        x = self.normalised(images)
        for name in self.layout.stages:
            x = getattr(self.classifier, name)(x)
        return x

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, C, ph, pw]``: one cell per channel behind global pooling, 7×7 in VGG."""
        if self.layout.relu_features:  # DenseNet
            features = torch.relu(features)
        if self.layout.pool is None:
            return nn.functional.adaptive_avg_pool2d(features, (1, 1))
        return getattr(self.classifier, self.layout.pool)(features)

    def last_stage(self) -> nn.Module:
        return getattr(self.classifier, self.layout.stages[-1])


def logits_and_class_gradient(head: nn.Module, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's logits and ∂logit_c/∂pooled for each row's top-1 class c, in closed form."""
    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise ExportError("class activation maps need a head that ends in a Linear layer")
    inputs: list[torch.Tensor] = []
    x = pooled
    for layer in layers:
        inputs.append(x)
        x = _vector_forward(layer, x)
    logits = x
    top1 = torch.argmax(logits, dim=1)
    gradient = layers[-1].weight[top1]
    for position in range(len(layers) - 2, -1, -1):
        gradient = _backward(layers[position], inputs[position], gradient)
    return logits, gradient


def _vector_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer`` on a batch of feature vectors (ConvNeXt's LayerNorm2d and Flatten take the
    pooled ``[B, C, 1, 1]``; on ``[B, C]`` they are a LayerNorm over C and nothing)."""
    if isinstance(layer, nn.Flatten):
        return x
    if isinstance(layer, nn.LayerNorm):
        return nn.functional.layer_norm(x, (x.shape[1],), layer.weight, layer.bias, layer.eps)
    # Functional forms: torchvision's heads use inplace=True activations, which would
    # overwrite the input the gradient's masks are computed from.
    if isinstance(layer, nn.ReLU):
        return torch.relu(x)
    if isinstance(layer, nn.Hardswish):
        return nn.functional.hardswish(x)
    if not isinstance(layer, nn.Linear | nn.Dropout | nn.BatchNorm1d):
        raise ExportError(f"class activation maps support {_HEAD_LAYERS} head layers, not {layer}")
    return layer(x)


def _backward(layer: nn.Module, x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """∂/∂x of the top-1 logit, from its gradient with respect to ``layer``'s output."""
    if isinstance(layer, nn.Linear):
        return gradient @ layer.weight
    if isinstance(layer, nn.ReLU):
        return gradient * (x > 0).to(x.dtype)
    if isinstance(layer, nn.Hardswish):  # as PyTorch's hardswish_backward: 0, x/3 + 1/2, 1
        slope = torch.where(x < -3, torch.zeros_like(x), torch.where(x <= 3, x / 3 + 0.5, torch.ones_like(x)))
        return gradient * slope
    if isinstance(layer, nn.BatchNorm1d):  # eval mode: a per-feature scale
        return gradient * layer.weight / torch.sqrt(layer.running_var + layer.eps)
    if isinstance(layer, nn.LayerNorm):
        deviation = x - x.mean(dim=1, keepdim=True)
        spread = torch.sqrt((deviation * deviation).mean(dim=1, keepdim=True) + layer.eps)
        scaled, unit = gradient * layer.weight, deviation / spread
        mean_scaled = scaled.mean(dim=1, keepdim=True)
        return (scaled - mean_scaled - unit * (scaled * unit).mean(dim=1, keepdim=True)) / spread
    return gradient  # Dropout (the identity in eval mode, the only mode served) and Flatten


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

    The reference the graph's closed form is checked against: the last stage's output is caught
    by a forward hook and the top-1 logit differentiated with respect to it. The backbone
    runs without a graph (its parameters are frozen for the call), so memory stays small.
    """
    classifier = model.classifier.eval()
    caught: list[torch.Tensor] = []

    def catch(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        # A copy goes on: DenseNet's forward applies a ReLU in place to its features.
        caught.append(output.detach().requires_grad_(True))
        return caught[-1].clone()

    trainable = [p for p in classifier.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    handle = model.last_stage().register_forward_hook(catch)
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
