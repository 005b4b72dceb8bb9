"""ONNX Runtime sessions over a repository's ONNX files, set up as the served model sets up its own.

Whoever runs a model beside Triton (the export's checks, the engine gate, the bench's
raw figure, the demo's comparison) gets it from here, configured as
``triton_python_model.py`` configures the served one: CPU provider, full graph
optimisation, the same intra-op thread count, no spinning (alone, ResNet50 runs as fast
either way: 7.5-7.7 images/s side by side on an AVX2 EPYC).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME
from podium.stores.modelrepo.errors import ModelRepositoryError

# 0 lets onnxruntime pick (one thread per physical core), as the served model does.
DEFAULT_THREADS = 0

# A model under test: uint8 [N, H, W, 3] -> float32 probabilities [N, classes].
Runner = Callable[[np.ndarray], np.ndarray]
# The same, answering every output of the model by name (probabilities, cam).
OutputsRunner = Callable[[np.ndarray], dict[str, np.ndarray]]


def onnx_session(path: Path, threads: int = DEFAULT_THREADS) -> ort.InferenceSession:
    """A CPU session on ``path``; ModelRepositoryError when onnxruntime cannot load it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelRepositoryError(f"onnxruntime cannot load {path}: {exc}") from exc


def onnx_runner(path: Path, threads: int = DEFAULT_THREADS, output: str = OUTPUT_NAME) -> Runner:
    """A Runner over the ONNX file at ``path``: uint8 pixels in, ``output`` (probabilities) out."""
    session = onnx_session(path, threads)
    return lambda pixels: session.run([output], {INPUT_NAME: pixels})[0]


def onnx_outputs_runner(path: Path, threads: int = DEFAULT_THREADS) -> OutputsRunner:
    """An OutputsRunner over the ONNX file at ``path``."""
    session = onnx_session(path, threads)
    names = [output.name for output in session.get_outputs()]
    return lambda pixels: dict(zip(names, session.run(names, {INPUT_NAME: pixels}), strict=True))
