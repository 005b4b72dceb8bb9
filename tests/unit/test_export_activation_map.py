"""The activation map's closed form: CAM's identity, Grad-CAM's gradient, scaling, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.activation_map import (
    ExplainingModel,
    autograd_grad_cam,
    logits_and_class_gradient,
    normalised_map,
    weighted_sum,
)
from export.errors import ExportError
from tests.support.grad_cam import grad_cam, pearson
from tests.support.tiny_resnet import tiny_resnet

CLASSES = 5


def photos(count: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth random pictures (noise upsampled), so that the maps have structure."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (count, 3, 6, 6)).astype(np.float32))
    fine = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return fine.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()


def test_cam_of_a_plain_head_averages_to_the_logit():
    """Zhou et al.: mean over cells of Σ_k W[c,k] A_k plus b_c is exactly logit c."""
    model = ExplainingModel(tiny_resnet(CLASSES))
    pixels = torch.from_numpy(photos(4))
    with torch.no_grad():
        features = model.features(pixels)
        pooled = torch.flatten(model.classifier.avgpool(features), 1)
        logits, weights = logits_and_class_gradient(model.classifier.fc, pooled)
        raw = weighted_sum(weights, features)
    top1 = logits.argmax(dim=1)
    assert torch.equal(weights, model.classifier.fc.weight[top1])
    rebuilt = raw.mean(dim=(1, 2)) + model.classifier.fc.bias[top1]
    torch.testing.assert_close(rebuilt, logits.gather(1, top1[:, None])[:, 0], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    "head",
    [
        lambda: nn.Sequential(nn.Linear(512, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, CLASSES)),
        lambda: nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(512, 64),
            nn.ReLU(),
            nn.Linear(64, 16),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(16, CLASSES),
        ),
        lambda: nn.Linear(512, CLASSES),
        # MobileNetV3's own head: an in-place Hardswish must not overwrite what its slope reads.
        lambda: nn.Sequential(nn.Linear(512, 64), nn.Hardswish(inplace=True), nn.Dropout(0.2), nn.Linear(64, CLASSES)),
        lambda: nn.Sequential(nn.Linear(512, 64), nn.ReLU(inplace=True), nn.Linear(64, CLASSES)),
        lambda: nn.Sequential(nn.Linear(512, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, CLASSES)),
        lambda: nn.Sequential(nn.LayerNorm(512), nn.Flatten(1), nn.Linear(512, CLASSES)),
    ],
    ids=[
        "fine-tuning head",
        "deeper head",
        "plain fc",
        "hardswish in place",
        "relu in place",
        "batchnorm",
        "layernorm",
    ],
)
def test_closed_form_gradient_is_autograds(head):
    torch.manual_seed(1)
    module = head().eval()
    with torch.no_grad():  # BatchNorm1d's and LayerNorm's own scales, not the identity
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm1d):
                layer.running_mean.uniform_(-1, 1)
                layer.running_var.uniform_(0.5, 2)
            if isinstance(layer, nn.BatchNorm1d | nn.LayerNorm):
                layer.weight.uniform_(0.5, 2)
                layer.bias.uniform_(-1, 1)
    # Large pooled values: Hardswish beyond ±3 and ReLUs off as in a trained network.
    pooled = (4 * torch.randn(6, 512)).relu().requires_grad_(True)
    logits, gradient = logits_and_class_gradient(module, pooled)
    chosen = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
    (expected,) = torch.autograd.grad(chosen, pooled)
    torch.testing.assert_close(gradient, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("sequential", [False, True], ids=["plain fc", "fine-tuning head"])
def test_maps_are_grad_cam_computed_by_autograd(sequential: bool):
    classifier = tiny_resnet(CLASSES, seed=2)
    if sequential:
        torch.manual_seed(3)
        classifier.fc = nn.Sequential(nn.Linear(512, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, CLASSES))
        with torch.no_grad():
            classifier.fc[3].weight.mul_(20)
    model = ExplainingModel(classifier.eval())
    pixels = photos(6)
    probabilities, maps = model.explain(pixels)
    expected, classes = grad_cam(classifier, pixels)
    assert maps.shape == (6, 3, 3)
    assert (probabilities.argmax(axis=1) == classes).all()
    assert min(pearson(a, b) for a, b in zip(maps, expected, strict=True)) >= 0.999
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    # The export's own autograd reference (used to verify exports) agrees too.
    np.testing.assert_allclose(autograd_grad_cam(model, pixels), expected, atol=1e-5)
    assert all(p.requires_grad for p in classifier.parameters())  # left as it found them


def test_maps_are_relud_and_scaled_to_one_and_flat_maps_stay_zero():
    raw = torch.tensor([[[-1.0, 2.0], [4.0, 0.5]], [[-3.0, -1.0], [-2.0, -0.1]]])
    maps = normalised_map(raw)
    torch.testing.assert_close(maps[0], torch.tensor([[0.0, 0.5], [1.0, 0.125]]))
    assert torch.equal(maps[1], torch.zeros(2, 2))  # nothing speaks for the class: no NaN
    assert torch.isfinite(normalised_map(raw.half())).all()


def test_only_known_layouts_and_head_layers_are_explained():
    with pytest.raises(ExportError, match="torchvision ResNet"):
        ExplainingModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ExportError, match="Linear, ReLU, Hardswish, Dropout, BatchNorm1d, LayerNorm and Flatten"):
        logits_and_class_gradient(nn.Sequential(nn.Linear(8, 4), nn.GELU(), nn.Linear(4, 2)), torch.randn(2, 8))
    with pytest.raises(ExportError, match="ends in a Linear"):
        logits_and_class_gradient(nn.Sequential(nn.Linear(8, 4), nn.ReLU()), torch.randn(2, 8))
