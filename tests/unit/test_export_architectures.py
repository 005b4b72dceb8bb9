"""The network registry: detection from keys and shapes, heads, default transforms, and maps
for every family equal to autograd's Grad-CAM (small inputs; no export, no process)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T

from export import ExportError
from export.activation_map import ExplainingModel, autograd_grad_cam
from export.architectures import ARCHITECTURES, architecture, detect
from export.checkpoint import build_model, untrained_model
from export.head import infer_head
from podium.core.imaging import PreprocessSpec, preprocess
from podium.core.modelmeta import ARCHITECTURE_NAMES


def meta_state(name: str, classes: int = 100) -> dict[str, torch.Tensor]:
    """``name``'s state_dict as meta tensors, its head's last layer giving ``classes``."""
    arch = ARCHITECTURES[name]
    shapes = arch.reference_shapes()
    head_keys = sorted((k for k in shapes if k.startswith(arch.head + ".")), key=lambda k: k.split(".")[1])
    last = max(head_keys, key=lambda k: int(k.split(".")[1]) if k.split(".")[1].isdigit() else -1)
    last_layer = last.rsplit(".", 1)[0]
    state = {}
    for key, shape in shapes.items():
        if key.rsplit(".", 1)[0] == last_layer:
            shape = (classes, *shape[1:])
        state[key] = torch.empty(shape, device="meta")
    return state


def test_the_registry_offers_what_the_issue_names():
    assert set(ARCHITECTURES) == set(ARCHITECTURE_NAMES)
    for name in ("resnet18", "resnet152", "wide_resnet50_2", "resnext50_32x4d", "efficientnet_b0", "efficientnet_b7"):
        assert name in ARCHITECTURES
    for name in ("efficientnet_v2_s", "mobilenet_v2", "mobilenet_v3_large", "vgg19", "vgg19_bn", "convnext_tiny"):
        assert name in ARCHITECTURES
    assert {"regnet_y_400mf", "densenet121"} <= set(ARCHITECTURES)
    with pytest.raises(ExportError, match="unknown architecture 'vit_b_16'; Podium knows resnet18"):
        architecture("vit_b_16")


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_every_network_is_detected_from_its_keys_and_shapes(name: str):
    assert detect(meta_state(name), "test").name == name


def test_lookalikes_are_told_apart_by_shape_and_old_checkpoints_by_keys():
    # Same keys, other shapes: ResNet50, Wide ResNet-50, ResNeXt-50.
    for name in ("resnet50", "wide_resnet50_2", "resnext50_32x4d"):
        assert detect(meta_state(name), "test").name == name
    old = {k: v for k, v in meta_state("resnet101").items() if not k.endswith("num_batches_tracked")}
    assert detect(old, "test").name == "resnet101"
    trimmed = dict(meta_state("efficientnet_b3"))
    trimmed.pop("features.1.0.block.0.0.weight")
    with pytest.raises(ExportError, match=r"Closest: efficientnet_b3.*1 efficientnet_b3 keys are missing"):
        detect(trimmed, "ckpt.pt")


@pytest.mark.parametrize(
    ("name", "resize", "crop", "interpolation"),
    [
        ("resnet50", 256, 224, "bilinear"),
        ("resnet152", 256, 224, "bilinear"),
        ("efficientnet_b0", 256, 224, "bicubic"),
        ("efficientnet_b3", 320, 300, "bicubic"),
        ("mobilenet_v2", 256, 224, "bilinear"),
        ("vgg19_bn", 256, 224, "bilinear"),
        ("convnext_tiny", 236, 224, "bilinear"),
    ],
)
def test_default_transforms_are_torchvisions_imagenet_ones(name, resize, crop, interpolation):
    assert ARCHITECTURES[name].transform() == PreprocessSpec(resize, crop, interpolation)


@pytest.mark.parametrize(
    ("name", "head", "described"),
    [
        (
            "efficientnet_b0",
            lambda: nn.Sequential(nn.Linear(1280, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, 100)),
            "Sequential(Linear(1280, 512), ReLU, Dropout, Linear(512, 100))",
        ),
        (
            "vgg11_bn",
            lambda: nn.Sequential(
                nn.Linear(25088, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.4), nn.Linear(32, 100)
            ),
            "Sequential(Linear(25088, 32), BatchNorm1d(32), ReLU, Dropout, Linear(32, 100))",
        ),
        (
            "mobilenet_v3_small",
            lambda: nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1024, 100)),
            "Sequential(Linear(576, 1024), Hardswish, Dropout, Linear(1024, 100))",
        ),
        ("densenet121", lambda: nn.Linear(1024, 100), "Linear(1024, 100)"),
    ],
    ids=["seed efficientnet head", "batchnorm head", "torchvision's own head", "plain head"],
)
def test_heads_of_the_source_projects_load_and_compute_the_same(name, head, described):
    torch.manual_seed(5)
    arch = ARCHITECTURES[name]
    original = arch.build()
    setattr(original, arch.head, head())
    original.eval()
    with torch.no_grad():  # BatchNorm1d's running statistics, not the identity
        for module in original.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    state = original.state_dict()
    assert infer_head(state, arch).describe() == described
    model, spec = build_model(state, arch, source="test")
    assert spec.num_classes == 100
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(original(images), model(images))


def smooth_pictures(count: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (count, 3, 6, 6)).astype(np.float32))
    fine = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return fine.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()


FAMILIES = [
    "resnet18",
    "efficientnet_b0",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "vgg11_bn",
    "convnext_tiny",
    "densenet121",
    "regnet_x_400mf",
]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_answers_as_torchvision_with_grad_cam_maps(name: str):
    """The served graph's probabilities are torchvision's forward; its closed-form maps are
    autograd's Grad-CAM on the last stage (VGG's 7x7 pooling and DenseNet's ReLU included)."""
    loaded = untrained_model(5, name)
    model = ExplainingModel(loaded.model, loaded.arch).eval()
    pixels = smooth_pictures(3, 96)
    probabilities, maps = model.explain(pixels)
    with torch.no_grad():
        expected = torch.softmax(loaded.model(model.normalised(torch.from_numpy(pixels))), dim=1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert maps.shape == (3, 3, 3)
    np.testing.assert_allclose(maps, autograd_grad_cam(model, pixels), atol=1e-4)


def test_bicubic_preprocessing_is_torchvisions_to_the_bit():
    rng = np.random.default_rng(4)
    for width, height in ((500, 375), (301, 640), (224, 224)):
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for interpolation, mode in (
            ("bicubic", T.InterpolationMode.BICUBIC),
            ("bilinear", T.InterpolationMode.BILINEAR),
        ):
            expected = np.asarray(T.Compose([T.Resize(256, interpolation=mode), T.CenterCrop(224)])(image))
            assert np.array_equal(preprocess(image, PreprocessSpec(256, 224, interpolation)), expected)
    with pytest.raises(ValueError, match="interpolation 'nearest' is not supported"):
        PreprocessSpec(interpolation="nearest")


def test_a_network_with_a_one_channel_first_convolution_is_detected_as_grey():
    state = meta_state("vgg19_bn")
    state["features.0.weight"] = torch.empty(64, 1, 3, 3, device="meta")
    arch = detect(state, "grey.pt")
    assert arch.name == "vgg19_bn" and arch.stem_key() == "features.0.weight" and arch.takes_grey(state)
    assert not arch.takes_grey(meta_state("vgg19_bn"))
    state["features.3.weight"] = torch.empty(64, 1, 3, 3, device="meta")  # only the first may change
    with pytest.raises(ExportError, match="features.3.weight"):
        detect(state, "odd.pt")


def test_a_grey_network_sees_what_torchvisions_grayscale_gives_it():
    """Grayscale (PIL's convert("L")) before resize and crop, bit-exact; the served graph reads one
    of the three equal channels, normalised with the first mean and std."""
    from export.serving_model import ServingModel

    torch.manual_seed(7)
    original = ARCHITECTURES["resnet18"].build(4)
    original.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
    model, _ = build_model(original.eval().state_dict(), ARCHITECTURES["resnet18"], source="grey")
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    spec = PreprocessSpec(256, 224, "bilinear", grayscale=True)
    pixels = preprocess(image, spec)
    grey = T.Compose([T.Grayscale(), T.Resize(256), T.CenterCrop(224)])(image)
    assert np.array_equal(pixels[..., 0], np.asarray(grey)) and np.array_equal(pixels[..., 0], pixels[..., 2])
    serving = ServingModel(model, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channels=1)
    reference = T.Compose([T.ToTensor(), T.Normalize([0.5], [0.25])])(grey)[None]
    with torch.no_grad():
        expected = torch.softmax(original.eval()(reference), dim=1).numpy()
    np.testing.assert_allclose(serving.predict(pixels[None]), expected, atol=1e-6)
