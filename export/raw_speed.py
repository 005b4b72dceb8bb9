"""Raw onnxruntime on the served ONNX file: the most this machine can do with the model alone.

The session is configured as the Triton Python-backend model configures its own (same
intra-op threads, full graph optimisation, CPU provider), and fed the same uint8 NHWC
batches, so the only difference left to Triton is Triton.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from export.served import ServedModel
from podium.stores.modelrepo import onnx_session

INPUT_SIZE = 224
MIN_RUNS = 3


@dataclass(frozen=True)
class RawRun:
    """One timed window at one batch size."""

    batch: int
    images_per_s: float
    run_seconds: tuple[float, ...]  # each session.run, for the batch-1 latency


def random_batch(batch: int, seed: int = 0) -> np.ndarray:
    """uint8 NHWC pixels; content does not change a dense model's speed."""
    return np.random.default_rng(seed).integers(0, 256, (batch, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)


class RawOnnxRuntime:
    """One onnxruntime session on the model's ONNX file, set up as Triton's model sets up its own."""

    def __init__(self, model: ServedModel) -> None:
        self.session = onnx_session(model.onnx_path, model.intra_op_threads)
        self.input_name = self.session.get_inputs()[0].name
        self._batches: dict[int, np.ndarray] = {}

    def _batch(self, size: int) -> np.ndarray:
        if size not in self._batches:
            self._batches[size] = random_batch(size)
        return self._batches[size]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: pixels})[0]

    def measure(self, batch: int, window_s: float) -> RawRun:
        """Images/s at one batch size over at least ``window_s`` and MIN_RUNS runs, after a warm-up run."""
        pixels = self._batch(batch)
        self.run(pixels)
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < MIN_RUNS or time.perf_counter() - started < window_s:
            before = time.perf_counter()
            self.run(pixels)
            times.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - started
        return RawRun(batch, len(times) * batch / elapsed, tuple(times))

    def sweep(self, batches: Sequence[int], window_s: float, passes: int = 2) -> list[RawRun]:
        """The best of ``passes`` interleaved passes per batch size: other work on a shared
        machine only ever slows a run down, and one noisy pass must not pick the batch."""
        runs = [[self.measure(batch, window_s / passes) for batch in batches] for _ in range(passes)]
        return [max(per_batch, key=lambda run: run.images_per_s) for per_batch in zip(*runs)]

    def measure_with_decode(self, encoded: Sequence[bytes], batch: int, window_s: float) -> float:
        """Images/s when this one process also decodes and preprocesses every image (one thread)."""
        from podium.core.imaging import decode_rgb, preprocess

        images, started, position = 0, time.perf_counter(), 0
        while images < MIN_RUNS * batch or time.perf_counter() - started < window_s:
            chunk = [encoded[(position + i) % len(encoded)] for i in range(batch)]
            position += batch
            self.run(np.stack([preprocess(decode_rgb(data)) for data in chunk]))
            images += batch
        return images / (time.perf_counter() - started)


def decode_seconds_per_image(encoded: Sequence[bytes]) -> float:
    """CPU time to decode and preprocess one image (one thread): what a worker spends per image
    before Triton sees it, and what sizes the worker fleet in front of a GPU."""
    from podium.core.imaging import decode_rgb, preprocess

    started = time.perf_counter()
    for data in encoded:
        preprocess(decode_rgb(data))
    return (time.perf_counter() - started) / len(encoded)


def best_run(runs: Sequence[RawRun]) -> RawRun:
    return max(runs, key=lambda run: run.images_per_s)
