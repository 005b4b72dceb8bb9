"""An independent PyTorch reference for what a served model must answer, and a test checkpoint.

Deliberately independent of ``imaging``, ``export`` and ``inference``: it decodes with
plain Pillow and preprocesses with torchvision's own eval transform, so a bug shared by the
serving code and its tests cannot hide. ``fit_checkpoint`` makes a ResNet50 checkpoint
(no downloads) whose answers differ from photo to photo, so comparisons prove something.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageOps
from torch import nn
from torchvision.models import resnet50

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES = 2048  # ResNet50's pooled feature width
HIDDEN = 256  # width of the team's fine-tuned head: Linear, ReLU, Dropout(0.2), Linear

# 16-bit grey. Plain "I" is included because older Pillow opened 16-bit PNGs as "I".
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def eval_transform(resize: int = 256, crop: int = 224, interpolation: str = "bilinear") -> T.Compose:
    """torchvision's ImageNet eval transform (PIL in, normalised float tensor out): ResNet50's
    by default, another network's with its resize, crop and interpolation."""
    return T.Compose(
        [
            T.Resize(resize, interpolation=T.InterpolationMode(interpolation)),
            T.CenterCrop(crop),
            T.ToTensor(),
            T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


def reference_load_rgb(path: Path | str) -> Image.Image:
    """Open an image file as the reference sees it: first frame, EXIF-upright, RGB.

    16-bit grey is scaled to 8 bits with round(v * 255 / 65535) (Pillow's own conversion
    would clip it to white); everything else is ``convert("RGB")``, which drops alpha.
    """
    with Image.open(path) as opened:
        opened.load()
        image = ImageOps.exif_transpose(opened)  # a new image, independent of the file
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.clip(np.asarray(image).astype(np.float64), 0.0, 65535.0)
        image = Image.fromarray(np.round(wide * 255.0 / 65535.0).astype(np.uint8))
    return image.convert("RGB")


def reference_predict(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, transform: T.Compose | None = None
) -> dict[Path, np.ndarray]:
    """Softmax probabilities (float32, one row per path) of ``model`` in eval mode."""
    transform = transform or eval_transform()
    model.eval()
    results: dict[Path, np.ndarray] = {}
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            chunk = list(paths[start : start + batch_size])
            batch = torch.stack([transform(reference_load_rgb(path)) for path in chunk])
            probabilities = torch.softmax(model(batch.float()).float(), dim=1).numpy()
            for path, row in zip(chunk, probabilities):
                results[path] = row.copy()
    return results


def _head_from_state_dict(state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The classification head implied by the ``fc.*`` keys: Linear or the Sequential head."""
    if "fc.weight" in state_dict:
        out_features, in_features = state_dict["fc.weight"].shape
        return nn.Linear(in_features, out_features)
    indices = sorted({int(key.split(".")[1]) for key in state_dict if key.startswith("fc.") and key.count(".") == 2})
    if not indices or indices[0] != 0:
        raise ValueError("state_dict has neither fc.weight nor a Sequential head starting at fc.0")
    layers: list[nn.Module] = []
    for position, index in enumerate(indices):
        if position:
            # Parameter-free layers between two Linears leave no keys; ReLU then Dropout is
            # the fine-tuning's layout (fc.0, fc.3). Dropout is the identity in eval mode.
            gap = index - indices[position - 1] - 1
            layers.extend([nn.ReLU(), *[nn.Dropout(0.2) for _ in range(gap - 1)]] if gap else [])
        out_features, in_features = state_dict[f"fc.{index}.weight"].shape
        layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


def build_resnet50(state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """torchvision ResNet50 with the head the state_dict implies, loaded strictly, in eval mode."""
    model = resnet50(weights=None)
    model.fc = _head_from_state_dict(state_dict)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# The test checkpoint


def _augment() -> T.Compose:
    """Training views of a photo: random resized crops and colour jitter.

    No random flips, on purpose: a model that answers the same for a photo and its mirror
    image could not tell whether a decoder honoured EXIF orientations 2, 4, 5 and 7.
    """
    return T.Compose(
        [
            T.RandomResizedCrop(224, scale=(0.3, 1.0)),
            T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
            T.ToTensor(),
            T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


def _batches(tensors: list[torch.Tensor], size: int) -> Iterable[torch.Tensor]:
    # channels_last: ~30 % faster convolutions on CPU, which matters on a 2-core machine.
    for start in range(0, len(tensors), size):
        yield torch.stack(tensors[start : start + size]).contiguous(memory_format=torch.channels_last)


def _recalibrate_batchnorm(model: nn.Module, images: list[torch.Tensor], batch_size: int) -> None:
    """Replace BN running statistics by their average over ``images``.

    A freshly initialised ResNet has mean 0 / variance 1 running statistics, which are far
    from the real activations: in eval mode its outputs collapse to one class for every
    input. Cumulative averaging (momentum=None) over real crops fixes that.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    with torch.no_grad():
        for batch in _batches(images, batch_size):
            model(batch)
    for norm in norms:
        norm.momentum = 0.1  # torchvision's default, so the saved model is an ordinary one
    model.eval()


def _pooled_features(model: nn.Module, images: list[torch.Tensor], batch_size: int) -> torch.Tensor:
    """2048-d average-pooled backbone features (the head replaced by the identity)."""
    head, model.fc = model.fc, nn.Identity()
    try:
        with torch.no_grad():
            return torch.cat([model(batch) for batch in _batches(images, batch_size)])
    finally:
        model.fc = head


def _fit_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int) -> nn.Sequential:
    """Train the Sequential head on standardised frozen features, then fold the scaling in."""
    mean = features.mean(dim=0)
    std = features.std(dim=0).clamp_min(1e-6)
    standardised = (features - mean) / std
    head = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Dropout(0.2), nn.Linear(HIDDEN, num_classes))
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    head.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(head(standardised), labels)
        loss.backward()
        optimiser.step()
    head.eval()
    # Fold the standardisation into fc.0 so that the head takes raw pooled features:
    # W((f - m) / s) + b == (W / s) f + (b - W (m / s)).
    with torch.no_grad():
        first = head[0]
        first.bias -= first.weight @ (mean / std)
        first.weight /= std
    return head


def fit_checkpoint(
    dest: Path,
    num_classes: int = 100,
    seed: int = 0,
    *,
    calibration_crops: int = 64,
    crops_per_photo: int = 12,
    steps: int = 300,
    batch_size: int = 16,
    verbose: bool = False,
) -> Path:
    """Write a ResNet50 state_dict (Sequential head, keys fc.0.* / fc.3.*) to ``dest``.

    Random backbone with recalibrated BatchNorm, plus a head fitted so that each bundled
    photograph gets its own class (spread over 0..num_classes-1). Not a useful classifier;
    a deterministic one whose top-1 changes from image to image. ~30 s on 2 CPU cores.
    """
    from podium.samples import bundled_photos  # deferred: loads scikit-image

    started = time.perf_counter()
    photos = [image.convert("RGB") for image in bundled_photos().values()]
    classes = np.linspace(0, num_classes - 1, num=len(photos)).round().astype(int) % num_classes

    # fork_rng: seed everything here without disturbing the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet50(weights=None).to(memory_format=torch.channels_last)
        augment = _augment()

        calibration = [augment(photos[i % len(photos)]) for i in range(calibration_crops)]
        _recalibrate_batchnorm(model, calibration, batch_size)
        if verbose:
            print(f"batchnorm recalibrated: {time.perf_counter() - started:.1f} s")

        # Each photo's canonical eval view plus augmented views.
        canonical = eval_transform()
        views: list[torch.Tensor] = []
        labels: list[int] = []
        for photo, label in zip(photos, classes):
            views.append(canonical(photo))
            views.extend(augment(photo) for _ in range(crops_per_photo))
            labels.extend([int(label)] * (crops_per_photo + 1))
        features = _pooled_features(model, views, batch_size)
        if verbose:
            print(f"features extracted: {time.perf_counter() - started:.1f} s")

        model.fc = _fit_head(features, torch.tensor(labels), num_classes, steps)
        if verbose:
            print(f"head fitted: {time.perf_counter() - started:.1f} s")

    model = model.to(memory_format=torch.contiguous_format).eval()  # plain layout on disk
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), dest)
    if verbose:
        print(f"checkpoint written: {time.perf_counter() - started:.1f} s")
    return dest


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_resnet50",
    "eval_transform",
    "fit_checkpoint",
    "reference_load_rgb",
    "reference_predict",
]
