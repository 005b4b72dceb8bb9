"""export_model: checkpoint -> verified ONNX -> new version in a Triton model repository."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import onnx
import onnxruntime
import torch
import torchvision

from export.checkpoint import LoadedModel, load_model, untrained_model
from export.errors import ExportError
from export.labels import DEFAULT_LABELS, read_labels
from export.model_config import DEFAULT_MAX_BATCH_SIZE, build_model_config
from export.model_repository import write_model_version
from export.serving_model import ServingModel
from export.targets import CPU, ONNX_FILENAME, resolve_target
from export.torch2onnx import DEFAULT_OPSET, torch2onnx
from export.verify import folder_images, sample_images, verify_onnx
from inference.metadata import ModelMetadata, Preprocessing

DEFAULT_MODEL_NAME = "resnet50_sports"
# A Triton model name is a folder name; keep it portable and never hidden.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

Progress = Callable[[str], None]


@dataclass
class ExportResult:
    """What export_model wrote."""

    model_dir: Path
    version: int
    metadata: ModelMetadata
    onnx_path: Path
    fidelity: dict


def export_model(
    *,
    checkpoint: Path | None,
    model_repository: Path,
    labels: Path | None = None,
    target: str = CPU,
    model_name: str = DEFAULT_MODEL_NAME,
    untrained: bool = False,
    verify_images: Path | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    progress: Progress | None = None,
) -> ExportResult:
    """Export a ResNet50 checkpoint (or a seeded untrained one) as a new model version.

    The ONNX model is checked against PyTorch on real images before anything is written
    to ``model_repository``. Raises ExportError with a readable message on any problem.
    """
    report = progress or (lambda message: None)
    spec = resolve_target(target)
    _check_arguments(checkpoint, untrained, model_name, max_batch_size)
    classes = read_labels(Path(labels) if labels else DEFAULT_LABELS)
    started = time.monotonic()

    if untrained:
        report(f"building an untrained ResNet50 with {len(classes)} classes (seeded)")
        loaded = untrained_model(len(classes))
    else:
        report(f"loading checkpoint {checkpoint}")
        loaded = load_model(Path(checkpoint))
    _check_classes(loaded, classes, labels)
    metadata = _metadata(loaded, classes, model_name, spec.name)
    serving = ServingModel(loaded.model).eval()

    with tempfile.TemporaryDirectory(prefix="podium-export-") as workdir:
        onnx_file = Path(workdir) / ONNX_FILENAME
        report(f"exporting {loaded.head.describe()} head to ONNX (opset {DEFAULT_OPSET})")
        torch2onnx(serving, onnx_file, input_size=metadata.preprocessing.crop)
        preprocessing = metadata.preprocessing.spec()
        images = folder_images(Path(verify_images), preprocessing) if verify_images else sample_images(preprocessing)
        report(f"verifying ONNX Runtime against PyTorch on {len(images)} images")
        fidelity = verify_onnx(serving, onnx_file, images)
        report(f"writing model {model_name} into {model_repository}")
        config = build_model_config(metadata, spec, max_batch_size)
        written = write_model_version(
            Path(model_repository),
            config,
            metadata=metadata,
            onnx_file=onnx_file,
            fidelity=fidelity,
            extra_files=spec.extra_files,
        )
    report(f"exported {written.model_dir} version {written.version} in {time.monotonic() - started:.1f} s")
    return ExportResult(written.model_dir, written.version, metadata, written.onnx_path, fidelity)


def _check_arguments(checkpoint: Path | None, untrained: bool, model_name: str, max_batch_size: int) -> None:
    if untrained and checkpoint is not None:
        raise ExportError("pass either --checkpoint CKPT or --untrained, not both")
    if not untrained and checkpoint is None:
        raise ExportError("no checkpoint given: pass --checkpoint CKPT, or --untrained for a seeded untrained model")
    if not _MODEL_NAME.fullmatch(model_name):
        raise ExportError(
            f"model name {model_name!r} is not usable as a folder name; use letters, digits, '_', '-' and '.'"
        )
    if max_batch_size < 1:
        raise ExportError(f"max batch size must be at least 1, got {max_batch_size}")


def _check_classes(loaded: LoadedModel, classes: list[str], labels: Path | None) -> None:
    if loaded.head.num_classes != len(classes):
        source = labels or f"the default labels ({DEFAULT_LABELS.name})"
        raise ExportError(
            f"the checkpoint's head has {loaded.head.num_classes} outputs but {source} names "
            f"{len(classes)} classes; pass --labels FILE with one class per line, in training order"
        )


def _metadata(loaded: LoadedModel, classes: list[str], model_name: str, target: str) -> ModelMetadata:
    return ModelMetadata(
        model_name=model_name,
        target=target,
        classes=classes,
        preprocessing=Preprocessing(),
        checkpoint_sha256=loaded.checkpoint_sha256,
        untrained=loaded.untrained,
        head=loaded.head.describe(),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        exporter={
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": str(DEFAULT_OPSET),
        },
    )
