"""One image's way through the model: bytes -> decode -> transform -> Triton -> top-k (and map)."""

from __future__ import annotations

from imaging import Decoder, ImageDecodeError
from inference.triton import TritonClassifier, TritonError, TritonUnavailable, top_k
from jobs import ActivationMap, ImageOutcome


def classify_bytes(
    classifier: TritonClassifier, data: bytes, k: int, decoder: Decoder, explain: bool = False
) -> ImageOutcome:
    """Classify one encoded image; with ``explain`` the outcome carries the top-1 class's map.

    Bad images give an error outcome; an unavailable Triton raises TritonUnavailable,
    because that is no fault of the image."""
    meta = classifier.metadata()
    try:
        pixels = decoder.model_input(data, meta.preprocessing.spec())
    except ImageDecodeError as exc:
        return ImageOutcome(error=str(exc))
    try:
        answer = classifier.infer(pixels[None], explain=explain)
    except TritonUnavailable:
        raise
    except TritonError as exc:
        return ImageOutcome(error=f"inference failed: {exc}")
    predictions = top_k(answer.probabilities[0], k, meta.classes)
    if answer.maps is None:
        return ImageOutcome(predictions=predictions)
    cells = answer.maps[0]
    cam = ActivationMap.of(predictions[0].index, cells.shape, cells.ravel().tolist())
    return ImageOutcome(predictions=predictions, cam=cam)
