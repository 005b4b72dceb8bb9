"""Export a trained ResNet50 checkpoint into a Triton model repository.

``export_model`` is the whole job: load the checkpoint (head inferred from its keys),
export a uint8-in/probabilities-out ONNX graph, verify it against PyTorch on real
images, and write a new model version (config.pbtxt generated from Triton's protobuf)
for the chosen target. ``export.engine_build`` builds the TensorRT engines of GPU
versions on the serving GPU.

The package root stays light: ``export_model`` and its PyTorch pipeline load on first use,
so that ``podium build-engine`` runs in the engine-builder image, which has no PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

from export.errors import ExportError
from export.labels import DEFAULT_LABELS
from export.targets import TARGETS

_FROM_PIPELINE = ("DEFAULT_MODEL_NAME", "ExportResult", "export_model")

__all__ = ["DEFAULT_LABELS", "DEFAULT_MODEL_NAME", "TARGETS", "ExportError", "ExportResult", "export_model"]


def __getattr__(name: str) -> Any:
    if name in _FROM_PIPELINE:
        return getattr(importlib.import_module("export.pipeline"), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
