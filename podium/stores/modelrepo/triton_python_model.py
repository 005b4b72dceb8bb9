"""Triton Python-backend model: runs ``model.onnx`` from its version folder in onnxruntime.

The export copies this file into each CPU version folder as ``model.py``. It runs inside
Triton's Python backend stub, where only ``triton_python_backend_utils``, numpy and
onnxruntime can be relied on, so it imports nothing from Podium; the names below must
match ``inference.INPUT_NAME``/``OUTPUT_NAME`` and ``export.targets`` (a unit test checks).
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
CAM_NAME = "cam"
# podium.core.modelmeta.fingerprint, written out again: the client checks that a response is its own,
# by the row tags it sent (echoed), or for a client that predates them by the pixels.
ROW_TAG_NAME = "row_tag"
ROW_TAG_ECHO_NAME = "row_tag_echo"
FINGERPRINT_NAME = "fingerprint"
FINGERPRINT_SIZE = 4
FINGERPRINT_SEED = 20260101
ONNX_FILENAME = "model.onnx"
THREADS_PARAMETER = "onnx_intra_op_threads"
DEFAULT_THREADS = 0  # onnxruntime's default: one per physical core
# Whether idle intra-op threads busy-wait; off unless the config says "1": beside the
# workers they would burn the cores the workers decode on (podium.stores.modelrepo.targets).
SPINNING_PARAMETER = "onnx_allow_spinning"
SPINNING_ENTRY = "session.intra_op.allow_spinning"
FIDELITY_FILENAME = "fidelity.json"
CPUINFO = "/proc/cpuinfo"
# podium.stores.modelrepo.cpu_kernels.KERNEL_PATHS, written out again: INT8 kernel path, the cpuinfo
# flags it needs, and its arithmetic, in onnxruntime's order of preference.
KERNEL_PATHS = (
    ("amx", frozenset({"amx_tile", "amx_int8", "avx512_vnni"}), "int32"),
    ("avx512-vnni", frozenset({"avx512_vnni", "avx512bw"}), "int32"),
    ("avx-vnni", frozenset({"avx_vnni", "avx2", "fma"}), "int32"),
    ("avx512", frozenset({"avx512bw", "avx512f"}), "int16-pairs"),
    ("avx2", frozenset({"avx2", "fma"}), "int16-pairs"),
)


class TritonPythonModel:
    """One onnxruntime session; each execute() runs all queued requests as one batch."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], ONNX_FILENAME)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(config)
        options.add_session_config_entry(SPINNING_ENTRY, _spinning(config))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.session_outputs = {output.name for output in self.session.get_outputs()}
        warning = kernel_warning(os.path.dirname(path))
        if warning:
            _log_warning(warning)

    def execute(self, requests):
        """Dynamic batching hands over several requests: concatenate, run once, split.

        The session computes only the outputs some request of the batch asked for: a map
        is made only when a request wants one, and each response carries what it asked for.
        """
        try:
            batches = [pb_utils.get_input_tensor_by_name(r, INPUT_NAME).as_numpy() for r in requests]
            tags = [pb_utils.get_input_tensor_by_name(r, ROW_TAG_NAME) for r in requests]
            wanted = [set(r.requested_output_names()) for r in requests]
            names = [OUTPUT_NAME] + [CAM_NAME] * any(CAM_NAME in w and CAM_NAME in self.session_outputs for w in wanted)
            pixels = batches[0] if len(batches) == 1 else np.concatenate(batches)  # one request: no copy
            computed = dict(zip(names, self.session.run(names, {INPUT_NAME: pixels})))
        except Exception as exc:  # noqa: BLE001 - answer every request with the error, never crash the stub
            error = pb_utils.TritonError(f"onnxruntime inference failed: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        bounds = np.cumsum([len(batch) for batch in batches])[:-1]
        parts = {name: np.split(values, bounds) for name, values in computed.items()}
        responses = []
        for position, (batch, tag, asked) in enumerate(zip(batches, tags, wanted)):
            tensors = [pb_utils.Tensor(OUTPUT_NAME, np.ascontiguousarray(parts[OUTPUT_NAME][position]))]
            if CAM_NAME in asked and CAM_NAME in parts:
                tensors.append(pb_utils.Tensor(CAM_NAME, np.ascontiguousarray(parts[CAM_NAME][position])))
            if tag is not None:
                tensors.append(pb_utils.Tensor(ROW_TAG_ECHO_NAME, np.ascontiguousarray(tag.as_numpy())))
            if FINGERPRINT_NAME in asked or not asked:  # ~0.45 ms per image: only for a client that checks it
                tensors.append(pb_utils.Tensor(FINGERPRINT_NAME, fingerprint(batch)))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        self.session = None


_WEIGHTS = {}


def fingerprint(pixels):
    """uint8 [N, H, W, C] -> int64 [N, FINGERPRINT_SIZE] (the same as podium.core.modelmeta.fingerprint)."""
    flat = pixels.reshape(len(pixels), -1).astype(np.int64)
    if flat.shape[1] not in _WEIGHTS:
        rng = np.random.default_rng(FINGERPRINT_SEED)
        _WEIGHTS[flat.shape[1]] = rng.integers(0, 2, (FINGERPRINT_SIZE, flat.shape[1]), dtype=np.int64) * 2 - 1
    return flat @ _WEIGHTS[flat.shape[1]].T


def kernel_warning(version_dir, cpuinfo=CPUINFO):
    """Why this CPU's INT8 kernels were not among those the export checked the model on;
    None when they were, or for a model with no such checks (FP32)."""
    try:
        with open(os.path.join(version_dir, FIDELITY_FILENAME), encoding="utf-8") as file:
            checks = json.load(file).get("kernel_checks") or []
    except (OSError, ValueError, AttributeError):
        return None
    if not checks:
        return None
    path, arithmetic = cpu_kernel_path(cpuinfo)
    if arithmetic in {check.get("arithmetic") for check in checks}:
        return None
    checked = ", ".join(f"{c.get('kernel_path')} ({c.get('arithmetic')})" for c in checks)
    return (
        f"the INT8 model in {version_dir} runs on this CPU's {path} kernels ({arithmetic} arithmetic), which its "
        f"export did not check it on (checked: {checked}); its answers may differ from its fidelity.json. "
        "Export it again on this kind of CPU, or serve the FP32 cpu target"
    )


def cpu_kernel_path(cpuinfo=CPUINFO):
    """(kernel path, arithmetic) of onnxruntime's INT8 kernels on this CPU."""
    flags = set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    for path, needed, arithmetic in KERNEL_PATHS:
        if needed <= flags:
            return path, arithmetic
    return ("sse" if flags else "unknown"), "unknown"


def _log_warning(message):
    logger = getattr(pb_utils, "Logger", None)  # Triton's log; older stubs have none
    if logger is not None:
        logger.log_warn(message)
    else:
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def _spinning(config):
    value = config.get("parameters", {}).get(SPINNING_PARAMETER, {}).get("string_value", "")
    return "1" if value.strip() == "1" else "0"


def _threads(config):
    value = config.get("parameters", {}).get(THREADS_PARAMETER, {}).get("string_value", "")
    return int(value) if value.strip() else DEFAULT_THREADS
