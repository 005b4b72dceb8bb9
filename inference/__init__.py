"""The Triton client of Podium's model: uint8 pixels in, probabilities (and maps) out, errors converted."""

from inference.pipeline import classify_bytes
from inference.pool import Classifiers
from inference.triton import (
    Inference,
    ModelNotFound,
    NoActivationMaps,
    TritonClassifier,
    TritonError,
    TritonUnavailable,
    top_k,
)

__all__ = [
    "Classifiers",
    "Inference",
    "ModelNotFound",
    "NoActivationMaps",
    "TritonClassifier",
    "TritonError",
    "TritonUnavailable",
    "classify_bytes",
    "top_k",
]
