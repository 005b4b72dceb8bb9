"""The numbers of an evaluation, by scikit-learn's definitions (zero_division=0), never re-derived.

``report_json`` is the contract of ``OUT/report.json`` (docs/evaluate.md): model,
n_images, n_failed, accuracy, accuracy_ci95 (Wilson), top5_accuracy, labels,
per_class{precision, recall, f1, support}, macro_avg, weighted_avg, confusion_matrix
(rows = true class, columns = predicted, in ``labels`` order), most_confused,
misclassified; and, for ``podium compare``, every image's prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

WILSON_Z = 1.959963984540054  # the 97.5% quantile of the normal distribution
MOST_CONFUSED = 20


@dataclass(frozen=True)
class Judged:
    """One classified image and its true class (indices into the model's classes)."""

    path: str
    true: int
    top: tuple[int, ...]  # the predicted classes, most probable first
    probability: float  # of the top-1 class


@dataclass
class Evaluation:
    labels: list[str]
    judged: list[Judged]
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    model: dict = field(default_factory=dict)
    # The evaluation job's images over its time through the service (upload to last answer).
    images_per_s: float | None = None


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% with the default z)."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def report_json(evaluation: Evaluation) -> dict:
    labels, judged = evaluation.labels, evaluation.judged
    y_true = np.array([j.true for j in judged], dtype=int)
    y_pred = np.array([j.top[0] for j in judged], dtype=int)
    every = list(range(len(labels)))
    correct = int((y_true == y_pred).sum())
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=every, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=every)
    return {
        "model": evaluation.model,
        "n_images": len(judged),
        "n_failed": len(evaluation.failed),
        "images_per_s": evaluation.images_per_s,
        "accuracy": float(accuracy_score(y_true, y_pred)) if judged else 0.0,
        "accuracy_ci95": list(wilson_interval(correct, len(judged))),
        "top5_accuracy": float(np.mean([j.true in j.top[:5] for j in judged])) if judged else 0.0,
        "labels": labels,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "macro_avg": _average(y_true, y_pred, "macro"),
        "weighted_avg": _average(y_true, y_pred, "weighted"),
        "confusion_matrix": matrix.tolist(),
        "most_confused": _most_confused(matrix, labels),
        "misclassified": [
            {"path": j.path, "true": labels[j.true], "predicted": labels[j.top[0]], "probability": j.probability}
            for j in judged
            if j.top[0] != j.true
        ],
        "failed": [{"path": path, "error": error} for path, error in evaluation.failed],
        "predictions": [
            {"path": j.path, "true": labels[j.true], "predicted": labels[j.top[0]], "probability": j.probability}
            for j in judged
        ],
    }


def _average(y_true: np.ndarray, y_pred: np.ndarray, average: str) -> dict:
    """scikit-learn's macro or weighted average over the classes that occur (its default labels)."""
    if not len(y_true):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def _most_confused(matrix: np.ndarray, labels: list[str]) -> list[dict]:
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(
        ((int(off[t, p]), labels[t], labels[p]) for t, p in zip(*np.nonzero(off), strict=True)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    return [{"true": t, "predicted": p, "count": count} for count, t, p in pairs[:MOST_CONFUSED]]
