"""Export a trained ResNet50 checkpoint into a Triton model repository.

``export_model`` is the whole job: load the checkpoint (head inferred from its keys),
export a uint8-in/probabilities-out ONNX graph, verify it against PyTorch on real
images, and write a new model version (config.pbtxt generated from Triton's protobuf).
"""

from export.errors import ExportError
from export.labels import DEFAULT_LABELS
from export.pipeline import DEFAULT_MODEL_NAME, ExportResult, export_model
from export.targets import TARGETS

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_MODEL_NAME",
    "TARGETS",
    "ExportError",
    "ExportResult",
    "export_model",
]
