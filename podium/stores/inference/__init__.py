"""The Triton client of Podium's model: uint8 pixels in, probabilities (and maps) out, errors converted."""

from podium.stores.inference.pipeline import classify_bytes
from podium.stores.inference.pool import Classifiers
from podium.stores.inference.triton import (
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
    "pipeline",
    "shared_memory",
    "top_k",
]
