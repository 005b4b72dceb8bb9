"""Export targets: how a verified ONNX model is served, one entry per ``--target``.

A target names the Triton backend, where its instances run, the files that go into the
version folder beside ``model.onnx`` and the config parameters they read. ``gpu``
(TensorRT plan) and ``cpu-int8`` (quantised ONNX) slot in here when they are built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from export.errors import ExportError

CPU = "cpu"
CPU_INT8 = "cpu-int8"
GPU = "gpu"
TARGETS = (CPU, CPU_INT8, GPU)
# Read by triton_python_model.py (which cannot import this package inside Triton).
ONNX_THREADS_PARAMETER = "onnx_intra_op_threads"
# 0 lets onnxruntime pick (one thread per physical core).
DEFAULT_ONNX_THREADS = 0
PYTHON_MODEL_SOURCE = Path(__file__).with_name("triton_python_model.py")
PYTHON_MODEL_FILENAME = "model.py"
ONNX_FILENAME = "model.onnx"


@dataclass(frozen=True)
class Target:
    """How one kind of deployment serves the exported model."""

    name: str
    backend: str
    instance_kind: int  # a model_config_pb2.ModelInstanceGroup.Kind value
    # Version-folder file name -> source file copied there (besides model.onnx).
    extra_files: Mapping[str, Path] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)


CPU_TARGET = Target(
    name=CPU,
    backend="python",  # the pytriton wheel's Triton has the Python backend only
    instance_kind=model_config_pb2.ModelInstanceGroup.KIND_CPU,
    extra_files={PYTHON_MODEL_FILENAME: PYTHON_MODEL_SOURCE},
    parameters={ONNX_THREADS_PARAMETER: str(DEFAULT_ONNX_THREADS)},
)
_IMPLEMENTED = {CPU: CPU_TARGET}


def resolve_target(name: str) -> Target:
    """The Target called ``name``; ExportError for unknown or not yet implemented ones."""
    if name in _IMPLEMENTED:
        return _IMPLEMENTED[name]
    if name in TARGETS:
        raise ExportError(
            f"target {name} is not implemented yet; export with --target {CPU} for now "
            f"(implemented: {', '.join(sorted(_IMPLEMENTED))})"
        )
    raise ExportError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
