"""Where everything lives in a Triton model repository, and which versions there are.

Layout::

    DIR/<model>/config.pbtxt            serves every version of the model
    DIR/<model>/labels.txt              class names, line i = output index i
    DIR/<model>/<N>/model.onnx          the ONNX model (the Python backend runs it)
    DIR/<model>/<N>/model.py            Python-backend model (CPU targets)
    DIR/<model>/<N>/model.plan          TensorRT engine (GPU target, built on the GPU)
    DIR/<model>/<N>/podium.json         the version's ModelMetadata
    DIR/<model>/<N>/fidelity.json       how the version compares with its reference
    DIR/<model>/<N>/build.json, check_images.npy, engine.json   (GPU: engine recipe and result)
    DIR/<model>/<N>/evaluation.json     the last `podium evaluate` of the version (accuracy, when, on what)
    DIR/<model>/.pending-<N>/           a GPU version waiting for its engine (Triton skips it)
    DIR/<model>/.staging-*/             a version being written (renamed into place when whole)

Triton serves the newest numeric version by default (version policy "latest 1").
"""

from __future__ import annotations

from pathlib import Path

from podium.core.modelmeta import METADATA_FILENAME
from podium.stores.modelrepo.errors import ModelRepositoryError

CONFIG_FILENAME = "config.pbtxt"
LABELS_FILENAME = "labels.txt"
ONNX_FILENAME = "model.onnx"
PLAN_FILENAME = "model.plan"  # Triton's default model file name for tensorrt_plan
PYTHON_MODEL_FILENAME = "model.py"
FIDELITY_FILENAME = "fidelity.json"
RECIPE_FILENAME = "build.json"
CHECK_IMAGES_FILENAME = "check_images.npy"
ENGINE_INFO_FILENAME = "engine.json"
EVALUATION_FILENAME = "evaluation.json"  # the last `podium evaluate` of the version
STAGING_PREFIX = ".staging-"
PENDING_PREFIX = ".pending-"
FIRST_VERSION = 1

__all__ = [
    "CHECK_IMAGES_FILENAME",
    "CONFIG_FILENAME",
    "ENGINE_INFO_FILENAME",
    "EVALUATION_FILENAME",
    "FIDELITY_FILENAME",
    "LABELS_FILENAME",
    "METADATA_FILENAME",
    "ONNX_FILENAME",
    "PLAN_FILENAME",
    "PYTHON_MODEL_FILENAME",
    "RECIPE_FILENAME",
]


def model_dirs(repository: Path, model_name: str | None = None) -> list[Path]:
    """The model folders of ``repository`` (hidden ones skipped), or just ``model_name``'s."""
    repository = Path(repository)
    if not repository.is_dir():
        raise ModelRepositoryError(f"model repository {repository} does not exist; pass --model-repository DIR")
    if model_name is not None:
        model_dir = repository / model_name
        if not model_dir.is_dir():
            raise ModelRepositoryError(f"no model {model_name!r} in {repository}; export one with `podium export`")
        return [model_dir]
    return sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith("."))


def installed_versions(model_dir: Path) -> list[tuple[int, Path]]:
    """(version, folder) of each numeric version folder, oldest first."""
    return sorted((int(p.name), p) for p in Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit())


def pending_versions(model_dir: Path) -> list[tuple[int, Path]]:
    """(version, folder) of each version waiting for its engine, oldest first."""
    found = []
    for path in Path(model_dir).iterdir():
        number = path.name.removeprefix(PENDING_PREFIX)
        if path.is_dir() and path.name.startswith(PENDING_PREFIX) and number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def newest_version(model_dir: Path) -> tuple[int, Path]:
    """The newest installed version: the one Triton serves."""
    installed = installed_versions(model_dir)
    if not installed:
        raise ModelRepositoryError(f"{model_dir} has no version folder; export the model with `podium export`")
    return installed[-1]


def version_dir(model_dir: Path, version: int | None = None) -> Path:
    """The folder of ``version``, or of the newest version when it is None."""
    if version is None:
        return newest_version(model_dir)[1]
    folder = Path(model_dir) / str(version)
    if not folder.is_dir():
        raise ModelRepositoryError(f"{Path(model_dir).name} has no version {version} in {Path(model_dir).parent}")
    return folder


def next_version(model_dir: Path) -> int:
    """One more than the highest version, pending ones included, or 1 when there is none."""
    versions = [number for number, _ in installed_versions(model_dir) + pending_versions(model_dir)]
    return max(versions, default=FIRST_VERSION - 1) + 1


def pending_name(version: int) -> str:
    return f"{PENDING_PREFIX}{version}"
