"""Export a trained torchvision classifier into a Triton model repository (PyTorch side).

``export_model`` is the whole job: load the checkpoint (network detected and head inferred
from its keys, ``export.architectures``),
export a uint8-in/probabilities-out ONNX graph, verify it against PyTorch on real
images, quantise it for cpu-int8, and write a new model version through ``modelrepo``.
The TensorRT engine of a GPU version is built later, on the GPU, by ``engine``.
"""

from export.errors import ExportError
from export.labels import DEFAULT_LABELS
from export.onnx_import import export_onnx
from export.pipeline import ExportResult, export_model

__all__ = ["DEFAULT_LABELS", "ExportError", "ExportResult", "export_model", "export_onnx"]
