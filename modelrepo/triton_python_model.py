"""Triton Python-backend model: runs ``model.onnx`` from its version folder in onnxruntime.

The export copies this file into each CPU version folder as ``model.py``. It runs inside
Triton's Python backend stub, where only ``triton_python_backend_utils``, numpy and
onnxruntime can be relied on, so it imports nothing from Podium; the names below must
match ``inference.INPUT_NAME``/``OUTPUT_NAME`` and ``export.targets`` (a unit test checks).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
CAM_NAME = "cam"
# modelmeta.fingerprint, written out again: the client checks that a response is its own.
FINGERPRINT_NAME = "fingerprint"
FINGERPRINT_SIZE = 4
FINGERPRINT_SEED = 20260101
ONNX_FILENAME = "model.onnx"
THREADS_PARAMETER = "onnx_intra_op_threads"
DEFAULT_THREADS = 0  # onnxruntime's default: one per physical core


class TritonPythonModel:
    """One onnxruntime session; each execute() runs all queued requests as one batch."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], ONNX_FILENAME)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(config)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.session_outputs = {output.name for output in self.session.get_outputs()}

    def execute(self, requests):
        """Dynamic batching hands over several requests: concatenate, run once, split.

        The session computes only the outputs some request of the batch asked for: a map
        is made only when a request wants one, and each response carries what it asked for.
        """
        try:
            batches = [pb_utils.get_input_tensor_by_name(r, INPUT_NAME).as_numpy() for r in requests]
            wanted = [set(r.requested_output_names()) for r in requests]
            names = [OUTPUT_NAME] + [CAM_NAME] * any(CAM_NAME in w and CAM_NAME in self.session_outputs for w in wanted)
            computed = dict(zip(names, self.session.run(names, {INPUT_NAME: np.concatenate(batches)})))
        except Exception as exc:  # noqa: BLE001 - answer every request with the error, never crash the stub
            error = pb_utils.TritonError(f"onnxruntime inference failed: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        bounds = np.cumsum([len(batch) for batch in batches])[:-1]
        parts = {name: np.split(values, bounds) for name, values in computed.items()}
        responses = []
        for position, (batch, asked) in enumerate(zip(batches, wanted)):
            tensors = [pb_utils.Tensor(OUTPUT_NAME, np.ascontiguousarray(parts[OUTPUT_NAME][position]))]
            if CAM_NAME in asked and CAM_NAME in parts:
                tensors.append(pb_utils.Tensor(CAM_NAME, np.ascontiguousarray(parts[CAM_NAME][position])))
            tensors.append(pb_utils.Tensor(FINGERPRINT_NAME, fingerprint(batch)))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        self.session = None


_WEIGHTS = {}


def fingerprint(pixels):
    """uint8 [N, H, W, C] -> int64 [N, FINGERPRINT_SIZE] (the same as modelmeta.fingerprint)."""
    flat = pixels.reshape(len(pixels), -1).astype(np.int64)
    if flat.shape[1] not in _WEIGHTS:
        rng = np.random.default_rng(FINGERPRINT_SEED)
        _WEIGHTS[flat.shape[1]] = rng.integers(0, 2, (FINGERPRINT_SIZE, flat.shape[1]), dtype=np.int64) * 2 - 1
    return flat @ _WEIGHTS[flat.shape[1]].T


def _threads(config):
    value = config.get("parameters", {}).get(THREADS_PARAMETER, {}).get("string_value", "")
    return int(value) if value.strip() else DEFAULT_THREADS
