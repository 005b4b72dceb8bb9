"""What a model repository holds, version by version, for ``podium models``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podium.core.modelmeta import ModelMetadata
from podium.stores.modelrepo.files import read_json
from podium.stores.modelrepo.gpu_decode import is_gpu_decode_model
from podium.stores.modelrepo.layout import (
    EVALUATION_FILENAME,
    FIDELITY_FILENAME,
    METADATA_FILENAME,
    PLAN_FILENAME,
    RECIPE_FILENAME,
    installed_versions,
    model_dirs,
    pending_versions,
)

READY = "ready"
ENGINE_MISSING = "engine missing"
PENDING = "pending engine"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class VersionSummary:
    model: str
    version: int
    status: str
    target: str = "?"
    precision: str = "?"
    classes: int = 0
    checkpoint_sha256: str | None = None
    untrained: bool = False
    top1_agreement: float | None = None
    max_abs_diff: float | None = None
    reference: str = ""
    served: bool = False  # the newest installed version: the one Triton serves
    evaluation: dict | None = None  # the last `podium evaluate` of the version
    # An INT8 version's checks at export: {"kernel_path", "arithmetic", "emulated", ...} each.
    kernel_checks: tuple[dict, ...] = ()
    architecture: str = "?"
    # "256→224 bilinear": the resize, the crop (the model's input size) and the interpolation.
    transform: str = "?"


def list_models(repository: Path) -> list[VersionSummary]:
    """Every installed and pending version of every model in ``repository``, in order."""
    summaries = []
    for model_dir in model_dirs(repository):
        if is_gpu_decode_model(model_dir):
            continue  # gpu-dali's decoding model and ensemble: listed with the model they serve
        installed = installed_versions(model_dir)
        newest = max((v for v, _ in installed), default=None)
        for version, folder in installed:
            summaries.append(_summary(model_dir.name, version, folder, pending=False, served=version == newest))
        for version, folder in pending_versions(model_dir):
            summaries.append(_summary(model_dir.name, version, folder, pending=True, served=False))
    return sorted(summaries, key=lambda s: (s.model, s.version))


def _summary(model: str, version: int, folder: Path, *, pending: bool, served: bool) -> VersionSummary:
    try:
        metadata = ModelMetadata.from_json((folder / METADATA_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return VersionSummary(model, version, UNREADABLE)
    fidelity = read_json(folder / FIDELITY_FILENAME)
    served_figures = fidelity.get("engine", fidelity)  # a GPU version is vouched for by its engine's check
    return VersionSummary(
        model=model,
        version=version,
        status=_status(folder, pending),
        target=metadata.target,
        precision=metadata.precision,
        classes=len(metadata.classes),
        checkpoint_sha256=metadata.checkpoint_sha256,
        untrained=metadata.untrained,
        top1_agreement=served_figures.get("top1_agreement"),
        max_abs_diff=served_figures.get("max_abs_diff"),
        reference=served_figures.get("reference", ""),
        served=served,
        evaluation=read_json(folder / EVALUATION_FILENAME) or None,
        kernel_checks=tuple(fidelity.get("kernel_checks", [])),
        architecture=metadata.architecture,
        transform=_transform_text(metadata),
    )


def _transform_text(metadata: ModelMetadata) -> str:
    pre = metadata.preprocessing
    return f"{pre.resize}→{pre.crop} {pre.interpolation}" + (" grey" if pre.grayscale else "")


def _status(folder: Path, pending: bool) -> str:
    if pending:
        return PENDING
    if (folder / RECIPE_FILENAME).is_file() and not (folder / PLAN_FILENAME).is_file():
        return ENGINE_MISSING
    return READY
