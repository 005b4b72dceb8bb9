"""A model repository that a cluster serves: exported once and reused while the checkpoint and target match
(the demo and the bench), and copies with another batcher delay."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from podium.core.modelmeta import CAM_NAME
from podium.stores.modelrepo import newest_version, read_model_config, render_model_config
from podium.stores.modelrepo.layout import CONFIG_FILENAME, ONNX_FILENAME
from podium.stores.modelrepo.targets import ONNX_THREADS_PARAMETER

_STAMP = ".bench-source"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServedModel:
    """One model repository that a cluster serves, and the ONNX file Triton runs from it."""

    repository: Path
    model_name: str
    onnx_path: Path  # the newest version's model.onnx: what Triton serves
    intra_op_threads: int  # as the Python-backend model will configure onnxruntime
    max_queue_delay_us: int | None  # None: served without Triton's dynamic batcher
    explains: bool = False  # exported with activation maps


def served_model(repository: Path, model_name: str) -> ServedModel:
    model_dir = repository / model_name
    config = read_model_config(model_dir)
    parameters = config.parameters
    threads = parameters[ONNX_THREADS_PARAMETER].string_value if ONNX_THREADS_PARAMETER in parameters else ""
    return ServedModel(
        repository=repository,
        model_name=model_name,
        onnx_path=newest_version(model_dir)[1] / ONNX_FILENAME,
        intra_op_threads=int(threads) if threads.strip() else 0,
        max_queue_delay_us=(
            config.dynamic_batching.max_queue_delay_microseconds if config.HasField("dynamic_batching") else None
        ),
        explains=any(output.name == CAM_NAME for output in config.output),
    )


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
    if calibration_images is not None:
        arguments["calibration"] = calibration_images  # what the INT8 export quantises with
    if checkpoint is None:
        # An untrained model's near-uniform answers can miss the INT8 agreement threshold;
        # its speed, which is all the bench uses it for, is the same.
        arguments["force"] = True
    export_model(**arguments)
    stamp.write_text(source)
    return served_model(repository, model_name)


def with_queue_delay(model: ServedModel, delay_us: int, dest: Path) -> ServedModel:
    """A copy of the model's newest version behind a dynamic batcher that waits ``delay_us``
    (one is added where the model is served without).

    The original repository is never edited: the copy goes to ``dest`` (ONNX hard-linked
    where the file system allows)."""
    source_dir = model.repository / model.model_name
    _, version = newest_version(source_dir)
    if dest.exists():
        shutil.rmtree(dest)
    target_dir = dest / model.model_name
    shutil.copytree(version, target_dir / version.name, copy_function=_link_or_copy)
    for item in source_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target_dir / item.name)
    config = read_model_config(source_dir)
    config.dynamic_batching.max_queue_delay_microseconds = delay_us
    (target_dir / CONFIG_FILENAME).write_text(render_model_config(config))
    return served_model(dest, model.model_name)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        Path(destination).hardlink_to(source)
    except OSError:
        shutil.copy2(source, destination)
