"""FP32 ONNX model -> static INT8 (QDQ) ONNX model with onnxruntime, and its speed-up.

Weights are quantised per output channel to int8, activations per tensor to uint8
(U8S8): onnxruntime's fast path on x86; on this development machine S8S8 ran *slower*
than FP32. The weights use 7 bits (``reduce_range``): on CPUs without VNNI (AVX2,
AVX-512 without VNNI) onnxruntime sums pairs of u8 x s8 products in saturating int16,
which full 8-bit weights overflow (the activation maps fell to mean r 0.897 there);
with 7 bits no sum can, so every x86 kernel computes the same integers, at the same
speed (``podium.stores.modelrepo.cpu_kernels``, docs/export.md). Calibration feeds the model's own input, uint8 pixels
preprocessed exactly as serving does, so the ranges are those it will see.

The uint8->float normalisation in front of the first convolution, the classification
head (Flatten, Gemm, Softmax) and the activation map's arithmetic stay in FP32: they are
a negligible share of the compute, and quantised logits would put 1/255 steps into the
softmax probabilities.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from export.errors import ExportError
from podium.core.imaging import ImageSet
from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME
from podium.stores.modelrepo import onnx_session

CALIBRATION_BATCH_SIZE = 8
SPEED_BATCH_SIZE = 8
SPEED_ROUNDS = 4
_FIRST_QUANTISED_OP = "Conv"
_POOLING_OP = "GlobalAveragePool"


@dataclass(frozen=True)
class Int8Speed:
    """FP32 and INT8 onnxruntime throughput measured side by side in one run."""

    fp32_images_per_s: float
    int8_images_per_s: float
    int8_speedup: float
    batch_size: int
    rounds: int
    intra_op_threads: int

    def as_report(self) -> dict:
        return asdict(self)


def onnx2int8(fp32_path: Path, int8_path: Path, calibration: ImageSet) -> list[str]:
    """Quantise ``fp32_path`` into ``int8_path``; returns the nodes kept in FP32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="podium-int8-") as workdir:
        prepared = Path(workdir) / "prepared.onnx"
        # ORT's recommended first step: shape inference and graph optimisation before quantising.
        quant_pre_process(str(fp32_path), str(prepared))
        kept_fp32 = fp32_nodes(onnx.load(str(prepared)))
        try:
            quantize_static(
                str(prepared),
                str(int8_path),
                _CalibrationReader(calibration.pixels),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=kept_fp32,
            )
        except Exception as exc:  # onnxruntime's quantiser raises plain exceptions of many kinds
            raise ExportError(f"INT8 quantisation with onnxruntime failed: {exc}") from exc
    return kept_fp32


def fp32_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in FP32: those before the first convolution, and every node
    that does not lead into the last global pooling (the head and the activation map)."""
    nodes = list(model.graph.node)
    first_conv = next((i for i, n in enumerate(nodes) if n.op_type == _FIRST_QUANTISED_OP), None)
    last_pool = max((i for i, n in enumerate(nodes) if n.op_type == _POOLING_OP), default=None)
    if first_conv is None or last_pool is None:
        raise ExportError(
            "the ONNX model has no Conv or GlobalAveragePool node; INT8 export expects a CNN with global average pooling before its head"
        )
    backbone = _ancestors(nodes, nodes[last_pool]) | {id(nodes[last_pool])}
    preamble = nodes[:first_conv]
    rest = [n for n in nodes[first_conv:] if id(n) not in backbone]
    return [n.name for n in preamble + rest]


def _ancestors(nodes: list[onnx.NodeProto], node: onnx.NodeProto) -> set[int]:
    """ids of the nodes whose outputs ``node`` depends on."""
    producer = {output: n for n in nodes for output in n.output}
    found: set[int] = set()
    pending = list(node.input)
    while pending:
        source = producer.get(pending.pop())
        if source is not None and id(source) not in found:
            found.add(id(source))
            pending.extend(source.input)
    return found


def measure_int8_speed(
    fp32_path: Path,
    int8_path: Path,
    pixels: np.ndarray,
    *,
    batch_size: int = SPEED_BATCH_SIZE,
    rounds: int = SPEED_ROUNDS,
    threads: int = 0,
) -> Int8Speed:
    """Throughput of both models on the same batch, rounds interleaved so that load on a
    shared machine hits both alike; same batch size and thread count for both."""
    batch = np.resize(pixels, (batch_size, *pixels.shape[1:]))  # repeats images if there are fewer
    sessions = [onnx_session(fp32_path, threads), onnx_session(int8_path, threads)]
    elapsed = [0.0, 0.0]
    for session in sessions:
        session.run([OUTPUT_NAME], {INPUT_NAME: batch})  # warm-up: allocations, kernel selection
    for _ in range(rounds):
        for index, session in enumerate(sessions):
            started = time.perf_counter()
            session.run([OUTPUT_NAME], {INPUT_NAME: batch})
            elapsed[index] += time.perf_counter() - started
    fp32, int8 = (rounds * batch_size / seconds for seconds in elapsed)
    return Int8Speed(fp32, int8, int8 / fp32, batch_size, rounds, threads)


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over preprocessed uint8 batches."""

    def __init__(self, pixels: np.ndarray, batch_size: int = CALIBRATION_BATCH_SIZE) -> None:
        self._batches = [pixels[i : i + batch_size] for i in range(0, len(pixels), batch_size)]
        self._next = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._next, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self) -> None:
        self._next = iter(self._batches)
