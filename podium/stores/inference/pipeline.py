"""One image's way through the model: bytes -> decode -> transform -> Triton -> top-k (and map)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from podium.core.imaging import Decoder, ImageDecodeError
from podium.core.jobs import ActivationMap, ImageOutcome, Prediction
from podium.core.modelmeta import ENCODED_INPUT
from podium.stores.inference.triton import TritonClassifier, TritonError, TritonUnavailable, top_k, top_k_rows


def classify_bytes(
    classifier: TritonClassifier,
    data: bytes,
    k: int,
    decoder: Decoder,
    explain: bool = False,
    on_stage: Callable[[str, float], None] | None = None,
) -> ImageOutcome:
    """Classify one encoded image; with ``explain`` the outcome carries the top-1 class's map.

    Bad images give an error outcome; an unavailable Triton raises TritonUnavailable,
    because that is no fault of the image. ``on_stage`` hears how long each stage took
    ("decode", "inference"), for the worker's metrics."""
    meta = classifier.metadata()
    started = time.perf_counter()
    encoded = meta.input_format == ENCODED_INPUT  # gpu-dali: the server decodes
    try:
        if encoded:
            decoder.check_header(data)  # what is no image, or too large, never reaches Triton
        else:
            pixels = decoder.model_input(data, meta.preprocessing.spec())
    except ImageDecodeError as exc:
        return ImageOutcome(error=str(exc))
    decoded = time.perf_counter()
    try:
        answer = classifier.infer_encoded(data, explain) if encoded else classifier.infer(pixels[None], explain=explain)
    except TritonUnavailable:
        raise
    except TritonError as exc:
        return ImageOutcome(error=f"inference failed: {exc}")
    if on_stage is not None:
        on_stage("decode", decoded - started)
        on_stage("inference", time.perf_counter() - decoded)
    return outcome_of(answer.probabilities[0], None if answer.maps is None else answer.maps[0], k, meta.classes)


def outcome_of(probabilities: np.ndarray, cells: np.ndarray | None, k: int, classes: list[str]) -> ImageOutcome:
    """One image's outcome from its row of the model's answer: top-k, and its map if asked."""
    return _outcome(top_k(probabilities, k, classes), cells)


def outcomes_of(probabilities: np.ndarray, maps: np.ndarray | None, k: int, classes: list[str]) -> list[ImageOutcome]:
    """``outcome_of`` of each row of a request's answer (``top_k_rows``: one sort for all)."""
    return [
        _outcome(predictions, None if maps is None else maps[row])
        for row, predictions in enumerate(top_k_rows(probabilities, k, classes))
    ]


def _outcome(predictions: tuple[Prediction, ...], cells: np.ndarray | None) -> ImageOutcome:
    if cells is None:
        return ImageOutcome(predictions=predictions)
    cam = ActivationMap.of(predictions[0].index, cells.shape, cells.ravel().tolist())
    return ImageOutcome(predictions=predictions, cam=cam)
