"""Write one exported model version into a Triton model repository, all or nothing.

Layout::

    DIR/<model_name>/config.pbtxt
    DIR/<model_name>/labels.txt
    DIR/<model_name>/<version>/model.onnx, model.py, podium.json, fidelity.json

A version is written into a hidden staging folder inside the model folder and renamed
into place, so a failed export never leaves a half-written version behind. Staging never
happens at the repository's top level: Triton treats every folder there as a model and
refuses to start on one it cannot load, whereas it skips non-numeric version folders.
Existing versions are kept; config.pbtxt and labels.txt are replaced (each atomically)
to describe the newest version, which is the one Triton serves by default.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from export.errors import ExportError
from export.model_config import CONFIG_FILENAME, LABELS_FILENAME, labels_text, render_model_config
from export.targets import ONNX_FILENAME
from inference.metadata import METADATA_FILENAME, ModelMetadata

FIDELITY_FILENAME = "fidelity.json"
FIRST_VERSION = 1
STAGING_PREFIX = ".staging-"
# mkdtemp makes 0700 folders; Triton may run as another user (e.g. in a container).
FOLDER_MODE = 0o755


@dataclass(frozen=True)
class WrittenModel:
    """Where a version landed."""

    model_dir: Path
    version: int
    onnx_path: Path


def write_model_version(
    repository: Path,
    config: model_config_pb2.ModelConfig,
    *,
    metadata: ModelMetadata,
    onnx_file: Path,
    fidelity: dict,
    extra_files: Mapping[str, Path],
) -> WrittenModel:
    """Add a version of ``config.name`` to ``repository``; ``onnx_file`` is moved, not copied."""
    repository = Path(repository)
    repository.mkdir(parents=True, exist_ok=True)
    model_dir = repository / config.name
    if model_dir.exists() and not model_dir.is_dir():
        raise ExportError(f"{model_dir} exists and is not a folder; remove it or choose another --model-name")
    model_files = {CONFIG_FILENAME: render_model_config(config), LABELS_FILENAME: labels_text(metadata.classes)}

    def fill_version(version_dir: Path) -> None:
        version_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
        for name, source in extra_files.items():
            shutil.copyfile(source, version_dir / name)
        (version_dir / METADATA_FILENAME).write_text(metadata.to_json() + "\n", encoding="utf-8")
        (version_dir / FIDELITY_FILENAME).write_text(json.dumps(fidelity, indent=2) + "\n", encoding="utf-8")
        shutil.move(str(onnx_file), version_dir / ONNX_FILENAME)  # last: the slow part of a retry

    created = not model_dir.is_dir()
    model_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
    try:
        version = next_version(model_dir)
        with _staging(model_dir) as staging:
            fill_version(staging)
            _rename(staging, model_dir / str(version))
    except BaseException:
        if created:  # leave no version-less model behind: Triton would refuse to start
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    for name, text in model_files.items():
        _replace_text(model_dir / name, text)
    return WrittenModel(model_dir, version, model_dir / str(version) / ONNX_FILENAME)


def next_version(model_dir: Path) -> int:
    """One more than the highest numeric version folder, or 1 when there is none."""
    versions = [int(p.name) for p in Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=FIRST_VERSION - 1) + 1


@contextmanager
def _staging(parent: Path, prefix: str = STAGING_PREFIX) -> Iterator[Path]:
    """A hidden temporary folder in ``parent``, removed on exit unless renamed away."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        path.chmod(FOLDER_MODE)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _rename(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError as exc:
        raise ExportError(
            f"cannot move the new model into place at {target} ({exc.strerror}); did another "
            "export write there at the same time? Run the export again"
        ) from None


def _replace_text(path: Path, text: str) -> None:
    """Write next to ``path`` and rename over it, so readers never see a partial file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
