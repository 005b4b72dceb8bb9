"""The model files the bench serves: the FP32 model, and the INT8 one when that target exists."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

CONFIG_FILENAME = "config.pbtxt"
ONNX_FILENAME = "model.onnx"
THREADS_PARAMETER = "onnx_intra_op_threads"  # what export/triton_python_model.py reads
INT8_TARGET = "cpu-int8"
_STAMP = ".bench-source"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServedModel:
    """One model repository that a cluster serves, and the ONNX file Triton runs from it."""

    repository: Path
    model_name: str
    onnx_path: Path  # the newest version's model.onnx: what Triton serves
    intra_op_threads: int  # as the Python-backend model will configure onnxruntime
    max_queue_delay_us: int


def newest_version(model_dir: Path) -> Path:
    versions = [path for path in model_dir.iterdir() if path.is_dir() and path.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"{model_dir} has no version folder")
    return max(versions, key=lambda path: int(path.name))


def read_config(model_dir: Path):
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse((model_dir / CONFIG_FILENAME).read_text(), model_config_pb2.ModelConfig())


def served_model(repository: Path, model_name: str) -> ServedModel:
    model_dir = repository / model_name
    if not (model_dir / CONFIG_FILENAME).exists():
        raise FileNotFoundError(f"no model {model_name!r} in {repository} (no {CONFIG_FILENAME})")
    config = read_config(model_dir)
    threads = config.parameters[THREADS_PARAMETER].string_value if THREADS_PARAMETER in config.parameters else ""
    return ServedModel(
        repository=repository,
        model_name=model_name,
        onnx_path=newest_version(model_dir) / ONNX_FILENAME,
        intra_op_threads=int(threads) if threads.strip() else 0,
        max_queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds,
    )


def int8_target_exists() -> bool:
    from export.errors import ExportError
    from export.targets import resolve_target

    try:
        resolve_target(INT8_TARGET)
    except ExportError:
        return False
    return True


def exported_model(
    repository: Path,
    model_name: str,
    checkpoint: Path | None,
    target: str,
    progress: Progress,
    calibration_images: Path | None = None,
) -> ServedModel:
    """Export once into ``repository``; later runs reuse it while checkpoint and target match."""
    source = f"{target}:{checkpoint.resolve() if checkpoint else 'untrained'}"
    if calibration_images is not None:
        source += f":calibrated on {calibration_images.name}"
    stamp = repository / _STAMP
    if stamp.exists() and stamp.read_text() == source and (repository / model_name / CONFIG_FILENAME).exists():
        progress(f"model: reusing {repository / model_name} ({source})")
        return served_model(repository, model_name)
    from export import export_model  # imports torch

    if repository.exists():
        shutil.rmtree(repository)
    arguments: dict = {
        "checkpoint": checkpoint,
        "untrained": checkpoint is None,
        "model_repository": repository,
        "model_name": model_name,
        "target": target,
        "progress": lambda message: progress(f"export {target}: {message}"),
    }
    accepted = inspect.signature(export_model).parameters
    if calibration_images is not None and "calibration" in accepted:
        arguments["calibration"] = calibration_images  # what the INT8 export quantises with
    if checkpoint is None and "force" in accepted:
        # An untrained model's near-uniform answers can miss the INT8 agreement threshold;
        # its speed, which is all the bench uses it for, is the same.
        arguments["force"] = True
    export_model(**arguments)
    stamp.write_text(source)
    return served_model(repository, model_name)


def with_queue_delay(model: ServedModel, delay_us: int, dest: Path) -> ServedModel:
    """A copy of the model's newest version whose dynamic batcher waits ``delay_us``.

    The original repository is never edited: the copy goes to ``dest`` (ONNX hard-linked
    where the file system allows)."""
    from export.model_config import render_model_config

    source_dir = model.repository / model.model_name
    version = newest_version(source_dir)
    if dest.exists():
        shutil.rmtree(dest)
    target_dir = dest / model.model_name
    shutil.copytree(version, target_dir / version.name, copy_function=_link_or_copy)
    for item in source_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target_dir / item.name)
    config = read_config(source_dir)
    config.dynamic_batching.max_queue_delay_microseconds = delay_us
    (target_dir / CONFIG_FILENAME).write_text(render_model_config(config))
    return served_model(dest, model.model_name)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        Path(destination).hardlink_to(source)
    except OSError:
        shutil.copy2(source, destination)
