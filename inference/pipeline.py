"""One image's way through the model: bytes -> decode -> transform -> Triton -> top-k."""

from __future__ import annotations

from imaging import Decoder, ImageDecodeError
from inference.triton import TritonClassifier, TritonError, TritonUnavailable, top_k
from jobs import ImageOutcome


def classify_bytes(classifier: TritonClassifier, data: bytes, k: int, decoder: Decoder) -> ImageOutcome:
    """Classify one encoded image. Bad images give an error outcome; an unavailable
    Triton raises TritonUnavailable, because that is no fault of the image."""
    meta = classifier.metadata()
    try:
        pixels = decoder.model_input(data, meta.preprocessing.spec())
    except ImageDecodeError as exc:
        return ImageOutcome(error=str(exc))
    try:
        probabilities = classifier.infer(pixels[None])[0]
    except TritonUnavailable:
        raise
    except TritonError as exc:
        return ImageOutcome(error=f"inference failed: {exc}")
    return ImageOutcome(predictions=top_k(probabilities, k, meta.classes))
