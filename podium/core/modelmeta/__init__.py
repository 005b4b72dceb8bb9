"""What an exported model says about itself, and the names every Podium model shares.

Pure data, read by every layer: the export writes it, the model repository stores it,
the Triton client reads it back from the served config, and the gateway shows it.
"""

from podium.core.modelmeta.fingerprint import (
    FINGERPRINT_NAME,
    FINGERPRINT_SIZE,
    ROW_TAG_ECHO_NAME,
    ROW_TAG_NAME,
    fingerprint,
)
from podium.core.modelmeta.metadata import (
    CAM_NAME,
    CAM_STRIDE,
    DEFAULT_MODEL_NAME,
    ENCODED_INPUT,
    ENCODED_INPUT_NAME,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_NAME,
    METADATA_FILENAME,
    METADATA_PARAMETER,
    OUTPUT_NAME,
    PIXELS_INPUT,
    ModelMetadata,
    Preprocessing,
)
from podium.core.modelmeta.networks import ARCHITECTURE_NAMES, DEFAULT_ARCHITECTURE, NETWORK_FAMILIES
from podium.core.modelmeta.reference import MODEL_NAME_PATTERN, ModelRef

__all__ = [
    "ARCHITECTURE_NAMES",
    "CAM_NAME",
    "CAM_STRIDE",
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_MODEL_NAME",
    "ENCODED_INPUT",
    "ENCODED_INPUT_NAME",
    "FINGERPRINT_NAME",
    "FINGERPRINT_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_NAME",
    "METADATA_FILENAME",
    "METADATA_PARAMETER",
    "MODEL_NAME_PATTERN",
    "NETWORK_FAMILIES",
    "OUTPUT_NAME",
    "PIXELS_INPUT",
    "ROW_TAG_ECHO_NAME",
    "ROW_TAG_NAME",
    "ModelMetadata",
    "ModelRef",
    "Preprocessing",
    "fingerprint",
    "networks",
]
