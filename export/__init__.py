"""Export a trained torchvision classifier into a Triton model repository (PyTorch side).

``export_model`` is the whole job: load the checkpoint (network detected and head inferred
from its keys, ``export.architectures``),
export a uint8-in/probabilities-out ONNX graph, verify it against PyTorch on real
images, quantise it for cpu-int8, and write a new model version through ``modelrepo``.
The TensorRT engine of a GPU version is built later, on the GPU, by ``engine``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export.errors import ExportError
    from export.labels import DEFAULT_LABELS
    from export.onnx_import import export_onnx
    from export.pipeline import ExportResult, export_model

__all__ = [
    "DEFAULT_LABELS",
    "ExportError",
    "ExportResult",
    "architectures",
    "export_model",
    "export_onnx",
    "labels",
    "raw_speed",
    "served",
    "stand_in",
]
# Loaded on first use: the export pulls in torch, which a reader of an exported model
# (export.served, export.raw_speed) does not need.
_LAZY = {
    "ExportError": "export.errors",
    "DEFAULT_LABELS": "export.labels",
    "export_onnx": "export.onnx_import",
    "ExportResult": "export.pipeline",
    "export_model": "export.pipeline",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
