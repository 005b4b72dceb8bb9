"""Check an exported ONNX model against the PyTorch model it came from, on real photographs.

Probabilities against PyTorch's, and activation maps against autograd Grad-CAM.

Runs before anything is written into the model repository, so a model that disagrees
with its source is never served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from export.activation_map import ExplainingModel, autograd_grad_cam
from export.errors import ExportError
from export.serving_model import ServingModel
from podium.core.imaging import PreprocessSpec, folder_image_set, preprocess
from podium.core.modelmeta import CAM_NAME, INPUT_NAME, OUTPUT_NAME
from podium.stores.modelrepo import compare_maps, onnx_session
from podium.stores.modelrepo.fidelity import MAP_MIN_CORRELATION

# Largest |Δprobability| allowed between ONNX Runtime and PyTorch, both float32: the
# project's own bar for served answers. (1e-4 held for ResNet50, ~2e-5 here; a ResNet152's
# 152 layers of differently ordered float sums reached 1.6e-4 on one photograph.)
FP32_TOLERANCE = 1e-3
MAX_VERIFY_IMAGES = 32
REFERENCE_FP32 = "pytorch-fp32"
REFERENCE_GRAD_CAM = "autograd Grad-CAM of {stage} (pytorch-fp32)"
# Images per autograd pass: the backward keeps layer4's activations of the whole batch.
MAP_BATCH_SIZE = 8
# Photographs bundled with scikit-image (no download): colour, grey, RGBA, small and large.
SAMPLE_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "colorwheel",
    "camera",
    "coins",
    "page",
    "logo",
    "microaneurysms",
)

Images = list[tuple[str, np.ndarray]]


def sample_images(spec: PreprocessSpec) -> Images:
    """scikit-image's bundled photographs, preprocessed to uint8 HWC crops."""
    try:
        import skimage.data  # imported here: only needed when no image folder is given
    except ImportError:
        raise ExportError("scikit-image is not installed; pass --verify-images DIR with a few photographs") from None
    images = []
    for name in SAMPLE_IMAGES:
        picture = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        images.append((f"skimage:{name}", preprocess(picture, spec)))
    return images


def folder_images(folder: Path, spec: PreprocessSpec, limit: int = MAX_VERIFY_IMAGES) -> Images:
    """Up to ``limit`` decodable images from ``folder`` (recursively), spread over its files."""
    found = folder_image_set(folder, spec, limit, spread=True)
    return list(zip(found.names, found.pixels, strict=True))


def verify_onnx(
    serving_model: ServingModel,
    onnx_path: Path,
    images: Images,
    *,
    tolerance: float = FP32_TOLERANCE,
    reference: str = REFERENCE_FP32,
    tie_gap: float | None = None,
) -> dict:
    """Run both models on ``images``; raise ExportError unless they agree. Returns the figures.

    ONNX Runtime runs the whole set as one batch and the first image alone, which also
    proves that the batch axis is dynamic. A top-1 difference counts unless PyTorch's two
    best classes lie within ``tie_gap`` (default: ``tolerance``) of each other.
    """
    names = [name for name, _ in images]
    batch = np.stack([pixels for _, pixels in images])
    expected = serving_model.predict(batch)
    session = onnx_session(onnx_path)
    try:
        got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        single = session.run([OUTPUT_NAME], {INPUT_NAME: batch[:1]})[0]
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(f"ONNX Runtime could not run the exported model {onnx_path}: {exc}") from exc
    if got.shape != expected.shape or single.shape != expected[:1].shape:
        raise ExportError(
            f"ONNX output shapes {got.shape} (batch) and {single.shape} (single) do not match "
            f"PyTorch's {expected.shape}; the batch axis may not be dynamic"
        )
    diff = np.abs(got.astype(np.float64) - expected)
    single_diff = float(np.abs(single.astype(np.float64) - expected[:1]).max())
    max_diff = max(float(diff.max()), single_diff)
    agree = got.argmax(axis=1) == expected.argmax(axis=1)
    fidelity = {
        "reference": reference,
        "images": names,
        "top1_agreement": float(agree.mean()),
        "max_abs_diff": max_diff,
        "mean_abs_diff": float(diff.mean()),
        "tolerance": tolerance,
    }
    if max_diff > tolerance:
        worst = names[int(diff.max(axis=1).argmax())]
        raise ExportError(
            f"ONNX model disagrees with PyTorch: max |Δprobability| {max_diff:.3g} > {tolerance:g} "
            f"(worst image {worst}, mean {fidelity['mean_abs_diff']:.3g}); the export is not faithful"
        )
    gap = tolerance if tie_gap is None else tie_gap
    flips = [names[i] for i in np.flatnonzero(~agree) if not _is_tie(expected[i], gap)]
    if flips:
        raise ExportError(
            f"ONNX model's top-1 class differs from PyTorch on {len(flips)} of {len(names)} images "
            f"({', '.join(flips)}); top-1 agreement {fidelity['top1_agreement']:.3f}"
        )
    return fidelity


def _is_tie(probabilities: np.ndarray, gap: float) -> bool:
    """The two best classes are within ``gap``: rounding may legitimately pick either."""
    best, runner_up = np.sort(probabilities)[-2:][::-1]
    return float(best - runner_up) <= gap


def verify_maps(model: ExplainingModel, onnx_path: Path, images: Images) -> dict:
    """The ONNX graph's activation maps against autograd Grad-CAM of the checkpoint.

    ExportError unless every image whose top-1 class both agree on gets a map with
    Pearson r >= MAP_MIN_CORRELATION. Returns the figures for the fidelity report.
    """
    names = [name for name, _ in images]
    batch = np.stack([pixels for _, pixels in images])
    expected_classes = model.predict(batch).argmax(axis=1)
    reference = np.concatenate(
        [autograd_grad_cam(model, batch[i : i + MAP_BATCH_SIZE]) for i in range(0, len(batch), MAP_BATCH_SIZE)]
    )
    try:
        probabilities, maps = onnx_session(onnx_path).run([OUTPUT_NAME, CAM_NAME], {INPUT_NAME: batch})
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(f"ONNX Runtime could not compute the activation maps of {onnx_path}: {exc}") from exc
    agreement = compare_maps(reference, maps, names, probabilities.argmax(axis=1) == expected_classes)
    if agreement.min_r < MAP_MIN_CORRELATION:
        raise ExportError(
            f"the graph's activation maps differ from autograd Grad-CAM: Pearson r {agreement.min_r:.4f} < "
            f"{MAP_MIN_CORRELATION} on {agreement.worst}; the map's head arithmetic does not fit this head"
        )
    reference_name = REFERENCE_GRAD_CAM.format(stage=model.layout.stages[-1])
    return {"reference": reference_name, **agreement.as_report()}
