"""Write one exported model version into a Triton model repository, all or nothing.

The layout is ``podium.stores.modelrepo.layout``'s. A version is written into a hidden staging folder
inside the model folder and renamed into place, so a failed export never leaves a half-written version behind. Staging never
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

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from podium.core.modelmeta import ModelMetadata
from podium.stores.modelrepo.config import labels_text, parse_model_config, render_model_config
from podium.stores.modelrepo.errors import ModelRepositoryError
from podium.stores.modelrepo.files import FOLDER_MODE, replace_json, replace_text, staging_folder
from podium.stores.modelrepo.layout import (
    CONFIG_FILENAME,
    FIDELITY_FILENAME,
    LABELS_FILENAME,
    METADATA_FILENAME,
    ONNX_FILENAME,
    PENDING_PREFIX,
    STAGING_PREFIX,
    installed_versions,
    next_version,
    pending_name,
)


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
        raise ModelRepositoryError(f"{model_dir} exists and is not a folder; remove it or choose another --model-name")
    _check_same_serving(model_dir, config)
    model_files = {CONFIG_FILENAME: render_model_config(config), LABELS_FILENAME: labels_text(metadata.classes)}

    def fill_version(version_dir: Path) -> None:
        version_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
        for name, source in extra_files.items():
            shutil.copyfile(source, version_dir / name)
        if pending:  # installed by promote_pending_version once the engine exists
            for name, text in model_files.items():
                (version_dir / name).write_text(text, encoding="utf-8")
        replace_text(version_dir / METADATA_FILENAME, metadata.to_json() + "\n")
        replace_json(version_dir / FIDELITY_FILENAME, fidelity)
        shutil.move(str(onnx_file), version_dir / ONNX_FILENAME)  # last: the slow part of a retry

    created = not model_dir.is_dir()
    model_dir.mkdir(mode=FOLDER_MODE, exist_ok=True)
    try:
        version = next_version(model_dir)
        with staging_folder(model_dir, STAGING_PREFIX) as staging:
            fill_version(staging)
            version_dir = model_dir / (pending_name(version) if pending else str(version))
            _rename(staging, version_dir)
    except BaseException:
        if created:  # leave no version-less model behind: Triton would refuse to start
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    if not pending:
        for name, text in model_files.items():
            replace_text(model_dir / name, text)
    return WrittenModel(model_dir, version, version_dir / ONNX_FILENAME, pending)


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
            replace_text(Path(model_dir) / name, text)
        (version_dir / name).unlink()
    return version_dir


def _check_same_serving(model_dir: Path, config: model_config_pb2.ModelConfig) -> None:
    """A model's versions share one config.pbtxt, so they must share a backend/platform."""
    existing = model_dir / CONFIG_FILENAME
    if not existing.is_file():
        return
    try:
        current = parse_model_config(existing.read_text(encoding="utf-8"))
    except ModelRepositoryError:
        return  # unreadable: it is replaced by this export
    before = current.backend or current.platform
    after = config.backend or config.platform
    if before != after:
        raise ModelRepositoryError(
            f"model {config.name} in {model_dir.parent} is served by {before}; this target needs {after}, and one "
            "config.pbtxt serves all versions of a model: export it under another --model-name or into another "
            "--model-repository"
        )


def _rename(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError as exc:
        raise ModelRepositoryError(
            f"cannot move the new model into place at {target} ({exc.strerror}); did another "
            "export write there at the same time? Run the export again"
        ) from None
