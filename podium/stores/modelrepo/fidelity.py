"""How closely a served model follows its reference, and the gate that refuses a poor one.

Pure functions over probability arrays, so that the same figures and the same gate apply
to every target (ONNX FP32, INT8, TensorRT FP16) and can be tested with made-up outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from podium.core.errors import FailedPrecondition, InvalidArgument
from podium.core.modelmeta import Preprocessing
from podium.stores.modelrepo.onnx_session import OutputsRunner, Runner

DEFAULT_BATCH_SIZE = 8
_SHOWN_IMAGES = 5


class FidelityError(FailedPrecondition):
    """A model does not agree closely enough with its reference to be installed."""


@dataclass(frozen=True)
class Agreement:
    """Figures of one candidate against one reference on the same images."""

    images: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    disagreeing: tuple[str, ...]
    # Top-1 agreement on the images whose reference top-1 leads its top-2 by more than
    # MARGIN_EPSILON: a near-tie flipped by rounding is no disagreement worth failing on.
    decisive_agreement: float = 1.0
    near_ties: int = 0

    def as_report(self) -> dict:
        return asdict(self) | {"disagreeing": list(self.disagreeing)}

    @classmethod
    def from_report(cls, report: dict) -> Agreement:
        """Back from as_report's dict (e.g. a cached engine's check)."""
        return cls(
            images=int(report["images"]),
            top1_agreement=float(report["top1_agreement"]),
            max_abs_diff=float(report["max_abs_diff"]),
            mean_abs_diff=float(report["mean_abs_diff"]),
            disagreeing=tuple(report["disagreeing"]),
            decisive_agreement=float(report.get("decisive_agreement", report["top1_agreement"])),
            near_ties=int(report.get("near_ties", 0)),
        )


# The reference's top-1 must lead its top-2 by more than this for a flip to count.
MARGIN_EPSILON = 0.01


def compare(reference: np.ndarray, candidate: np.ndarray, names: Sequence[str]) -> Agreement:
    """Top-1 agreement and |Δprobability| of ``candidate`` against ``reference`` (same rows)."""
    if reference.shape != candidate.shape or len(names) != len(reference):
        raise InvalidArgument(
            f"cannot compare outputs of shapes {reference.shape} and {candidate.shape} on {len(names)} images; "
            "the model's output does not match its reference"
        )
    if not len(names):
        raise InvalidArgument("no images to compare on; pass a folder with decodable photographs")
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    agree = candidate.argmax(axis=1) == reference.argmax(axis=1)
    ordered = np.sort(reference, axis=1)
    decisive = (ordered[:, -1] - ordered[:, -2]) > MARGIN_EPSILON if reference.shape[1] > 1 else np.ones_like(agree)
    return Agreement(
        images=len(names),
        top1_agreement=float(agree.mean()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        disagreeing=tuple(names[i] for i in np.flatnonzero(~agree)),
        decisive_agreement=float(agree[decisive].mean()) if decisive.any() else 1.0,
        near_ties=int((~decisive).sum()),
    )


# A served map counts as the reference's when their Pearson r reaches this.
MAP_MIN_CORRELATION = 0.99


@dataclass(frozen=True)
class MapAgreement:
    """Activation maps of one candidate against one reference, on the images both gave the same class."""

    images: int
    min_r: float
    mean_r: float
    share_at_least: float  # of those images, the share whose r reaches MAP_MIN_CORRELATION
    max_abs_diff: float
    worst: str

    def as_report(self) -> dict:
        return asdict(self) | {"min_correlation": MAP_MIN_CORRELATION}


def map_correlations(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Pearson r of each pair of maps ``[N, h, w]``; two flat maps correlate 1 if equal, else 0."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = candidate.reshape(len(candidate), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    flat = norms == 0
    r = np.where(flat, 0.0, (a * b).sum(axis=1) / np.where(flat, 1.0, norms))
    both_flat = flat & np.all(np.isclose(reference.reshape(len(a), -1), candidate.reshape(len(b), -1)), axis=1)
    return np.where(both_flat, 1.0, r)


def compare_maps(
    reference: np.ndarray, candidate: np.ndarray, names: Sequence[str], same_class: np.ndarray
) -> MapAgreement:
    """How closely ``candidate``'s maps follow ``reference``'s where both explain the same class."""
    if reference.shape != candidate.shape or len(names) != len(reference):
        raise InvalidArgument(f"cannot compare maps of shapes {reference.shape} and {candidate.shape}")
    r = map_correlations(reference, candidate)[same_class]
    if not len(r):  # nothing to compare: the probabilities' gate speaks for such a model
        return MapAgreement(0, 0.0, 0.0, 0.0, 0.0, "")
    kept = [name for name, same in zip(names, same_class, strict=True) if same]
    diff = np.abs(candidate[same_class].astype(np.float64) - reference[same_class])
    return MapAgreement(
        images=len(r),
        min_r=float(r.min()),
        mean_r=float(r.mean()),
        share_at_least=float((r >= MAP_MIN_CORRELATION).mean()),
        max_abs_diff=float(diff.max()),
        worst=kept[int(r.argmin())],
    )


def require_agreement(agreement: Agreement, minimum: float, *, what: str, override: str) -> None:
    """FidelityError unless top-1 agreement reaches ``minimum``; ``override`` says how to force it."""
    if agreement.top1_agreement >= minimum:
        return
    shown = ", ".join(agreement.disagreeing[:_SHOWN_IMAGES]) + (
        ", ..." if len(agreement.disagreeing) > _SHOWN_IMAGES else ""
    )
    raise FidelityError(
        f"{what} agrees in top-1 on {agreement.top1_agreement:.1%} of {agreement.images} images, below the "
        f"required {minimum:.1%} (differs on {shown}; max |Δp| {agreement.max_abs_diff:.3g}); not installed. "
        f"Check the calibration or build, or {override}"
    )


def require_decisive_agreement(
    agreement: Agreement, minimum: float, max_abs_diff: float, *, what: str, override: str
) -> None:
    """FidelityError unless top-1 agrees on ``minimum`` of the images that are no near-tie,
    and no probability moved by more than ``max_abs_diff`` (the engine gate)."""
    if agreement.decisive_agreement >= minimum and agreement.max_abs_diff <= max_abs_diff:
        return
    decisive = agreement.images - agreement.near_ties
    raise FidelityError(
        f"{what} agrees in top-1 on {agreement.decisive_agreement:.1%} of the {decisive} of {agreement.images} images "
        f"that are no near-tie (required {minimum:.1%}), max |Δp| {agreement.max_abs_diff:.3g} (allowed "
        f"{max_abs_diff:.3g}); not installed. Check the build, or {override}"
    )


def run_batched(runner: Runner, pixels: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """``runner`` over ``pixels`` in batches of at most ``batch_size``, outputs concatenated."""
    return np.concatenate([runner(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)])


def run_batched_outputs(
    runner: OutputsRunner, pixels: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, np.ndarray]:
    """As run_batched, for a runner that answers every output by name."""
    parts = [runner(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def fidelity_report(
    *,
    target: str,
    model: str,
    reference: str,
    names: Sequence[str],
    agreement: Agreement,
    preprocessing: Preprocessing,
    **extra: object,
) -> dict:
    """The fidelity.json written beside a model version: which images, what agreed, how."""
    return {
        "target": target,
        "model": model,
        "reference": reference,
        "images": list(names),
        "top1_agreement": agreement.top1_agreement,
        "max_abs_diff": agreement.max_abs_diff,
        "mean_abs_diff": agreement.mean_abs_diff,
        "disagreeing": list(agreement.disagreeing),
        "preprocessing": preprocessing.model_dump(mode="json"),
        **extra,
    }
