"""Write one exported model version into a Triton model repository, all or nothing.

Layout::

    DIR/<model_name>/config.pbtxt
    DIR/<model_name>/labels.txt
    DIR/<model_name>/<version>/model.onnx, model.py, podium.json, fidelity.json
    DIR/<model_name>/.pending-<version>/   (GPU: ONNX + build recipe, waiting for its engine)

A version is written into a hidden staging folder inside the model folder and renamed
into place, so a failed export never leaves a half-written version behind. Staging never
happens at the repository's top level: Triton treats every folder there as a model and
refuses to start on one it cannot load, whereas it skips non-numeric version folders.
Existing versions are kept; config.pbtxt and labels.txt are replaced (each atomically)
to describe the newest version, which is the one Triton serves by default.

A version that needs a TensorRT engine is written as a *pending* version instead: a hidden
``.pending-<N>`` folder holding the ONNX model, its build recipe and the config.pbtxt and
labels.txt it will install. Triton never sees it (hidden, non-numeric), so the version it
serves keeps serving; ``podium build-engine`` adds the engine on the serving GPU and only
then renames the folder to ``<N>`` and installs its config.
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
from export.model_config import (
    CONFIG_FILENAME,
    LABELS_FILENAME,
    labels_text,
    parse_model_config,
    render_model_config,
)
from export.targets import ONNX_FILENAME
from inference.metadata import METADATA_FILENAME, ModelMetadata

FIDELITY_FILENAME = "fidelity.json"
FIRST_VERSION = 1
STAGING_PREFIX = ".staging-"
PENDING_PREFIX = ".pending-"
# mkdtemp makes 0700 folders; Triton may run as another user (e.g. in a container).
FOLDER_MODE = 0o755


@dataclass(frozen=True)
class WrittenModel:
    """Where a version landed."""

    model_dir: Path
    version: int
    onnx_path: Path
    pending: bool = False


def write_model_version(
    repository: Path,
    config: model_config_pb2.ModelConfig,
    *,
    metadata: ModelMetadata,
    onnx_file: Path,
    fidelity: dict,
    extra_files: Mapping[str, Path],
    pending: bool = False,
) -> WrittenModel:
    """Add a version of ``config.name`` to ``repository``; ``onnx_file`` is moved, not copied.

    ``extra_files`` are copied into the version folder. With ``pending`` the version waits
    for its engine in ``.pending-<N>`` and the served config is left as it is.
    """
    repository = Path(repository)
    repository.mkdir(parents=True, exist_ok=True)
    model_dir = repository / config.name
    if model_dir.exists() and not model_dir.is_dir():
        raise ExportError(f"{model_dir} exists and is not a folder; remove it or choose another --model-name")
    _check_same_serving(model_dir, config)
    model_files = {CONFIG_FILENAME: render_model_config(config), LABELS_FILENAME: labels_text(metadata.classes)}

    def fill_version(version_dir: Path) -> None:
        version_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
        for name, source in extra_files.items():
            shutil.copyfile(source, version_dir / name)
        if pending:  # installed by promote_pending_version once the engine exists
            for name, text in model_files.items():
                (version_dir / name).write_text(text, encoding="utf-8")
        (version_dir / METADATA_FILENAME).write_text(metadata.to_json() + "\n", encoding="utf-8")
        (version_dir / FIDELITY_FILENAME).write_text(json.dumps(fidelity, indent=2) + "\n", encoding="utf-8")
        shutil.move(str(onnx_file), version_dir / ONNX_FILENAME)  # last: the slow part of a retry

    created = not model_dir.is_dir()
    model_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
    try:
        version = next_version(model_dir)
        with _staging(model_dir) as staging:
            fill_version(staging)
            version_dir = model_dir / (pending_name(version) if pending else str(version))
            _rename(staging, version_dir)
    except BaseException:
        if created:  # leave no version-less model behind: Triton would refuse to start
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    if not pending:
        for name, text in model_files.items():
            _replace_text(model_dir / name, text)
    return WrittenModel(model_dir, version, version_dir / ONNX_FILENAME, pending)


def next_version(model_dir: Path) -> int:
    """One more than the highest version, pending ones included, or 1 when there is none."""
    versions = [v for v in (_version_number(p) for p in Path(model_dir).iterdir() if p.is_dir()) if v is not None]
    return max(versions, default=FIRST_VERSION - 1) + 1


def pending_name(version: int) -> str:
    return f"{PENDING_PREFIX}{version}"


def pending_versions(model_dir: Path) -> list[tuple[int, Path]]:
    """(version, folder) of each version waiting for its engine, oldest first."""
    found = [
        (int(p.name.removeprefix(PENDING_PREFIX)), p)
        for p in Path(model_dir).iterdir()
        if p.is_dir() and p.name.startswith(PENDING_PREFIX) and p.name.removeprefix(PENDING_PREFIX).isdigit()
    ]
    return sorted(found)


def installed_versions(model_dir: Path) -> list[tuple[int, Path]]:
    """(version, folder) of each numeric version folder, oldest first."""
    return sorted((int(p.name), p) for p in Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit())


def promote_pending_version(model_dir: Path, pending_dir: Path) -> Path:
    """Rename ``.pending-<N>`` to ``<N>`` and install the config.pbtxt and labels.txt it carries.

    The config is replaced only when the version is the newest, the one Triton serves.
    """
    version = int(pending_dir.name.removeprefix(PENDING_PREFIX))
    version_dir = Path(model_dir) / str(version)
    model_files = {
        name: (pending_dir / name).read_text(encoding="utf-8") for name in (CONFIG_FILENAME, LABELS_FILENAME)
    }
    _rename(pending_dir, version_dir)
    newest = max((v for v, _ in installed_versions(model_dir)), default=version)
    for name, text in model_files.items():
        if version == newest:
            _replace_text(Path(model_dir) / name, text)
        (version_dir / name).unlink()
    return version_dir


def _version_number(path: Path) -> int | None:
    name = path.name.removeprefix(PENDING_PREFIX)
    return int(name) if name.isdigit() else None


def _check_same_serving(model_dir: Path, config: model_config_pb2.ModelConfig) -> None:
    """A model's versions share one config.pbtxt, so they must share a backend/platform."""
    existing = model_dir / CONFIG_FILENAME
    if not existing.is_file():
        return
    try:
        current = parse_model_config(existing.read_text(encoding="utf-8"))
    except ExportError:
        return  # unreadable: it is replaced by this export
    before = current.backend or current.platform
    after = config.backend or config.platform
    if before != after:
        raise ExportError(
            f"model {config.name} in {model_dir.parent} is served by {before}; this target needs {after}, and one "
            "config.pbtxt serves all versions of a model: export it under another --model-name or into another "
            "--model-repository"
        )


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
