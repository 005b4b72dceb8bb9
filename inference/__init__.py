"""Everything a Triton client of Podium's model needs: its metadata and a classifier."""

from inference.metadata import (
    INPUT_NAME,
    METADATA_FILENAME,
    METADATA_PARAMETER,
    OUTPUT_NAME,
    ModelMetadata,
    Preprocessing,
)
from inference.triton import TritonClassifier, TritonError, TritonUnavailable, top_k

__all__ = [
    "INPUT_NAME",
    "METADATA_FILENAME",
    "METADATA_PARAMETER",
    "OUTPUT_NAME",
    "ModelMetadata",
    "Preprocessing",
    "TritonClassifier",
    "TritonError",
    "TritonUnavailable",
    "top_k",
]
