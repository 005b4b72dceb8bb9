"""Triton direct: closed-loop async gRPC clients sending pre-built uint8 batches.

No decoding, no Celery, no gateway: what Triton (dynamic batcher + Python backend +
onnxruntime) delivers when it is kept busy. ``concurrency`` requests are in flight at
all times; each carries ``batch`` images.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.stats import merge_bursts, rate_between_completions
from export.raw_speed import random_batch

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
REQUEST_TIMEOUT_S = 120.0
# A window is extended (up to this factor) until it spans a few completions.
MIN_COMPLETIONS = 3
MAX_WINDOW_STRETCH = 4.0


@dataclass(frozen=True)
class TritonCell:
    """One (concurrency, client batch) point; None when no steady rate could be measured."""

    concurrency: int
    batch: int
    images_per_s: float | None


def measure(url: str, model_name: str, concurrency: int, batch: int, warmup_s: float, window_s: float) -> TritonCell:
    rate = asyncio.run(_closed_loop(url, model_name, concurrency, batch, warmup_s, window_s))
    return TritonCell(concurrency, batch, rate)


def sweep(
    url: str,
    model_name: str,
    concurrencies: Sequence[int],
    batches: Sequence[int],
    warmup_s: float,
    window_s: float,
) -> list[TritonCell]:
    return [measure(url, model_name, c, b, warmup_s, window_s) for b in batches for c in concurrencies]


def best_cell(cells: Sequence[TritonCell]) -> TritonCell:
    measured = [cell for cell in cells if cell.images_per_s is not None]
    if not measured:
        raise RuntimeError("no Triton configuration gave a steady rate")
    return max(measured, key=lambda cell: cell.images_per_s or 0.0)


async def _closed_loop(
    url: str, model_name: str, concurrency: int, batch: int, warmup_s: float, window_s: float
) -> float | None:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        tensor = grpcclient.InferInput(INPUT_NAME, [batch, 224, 224, 3], "UINT8")
        tensor.set_data_from_numpy(random_batch(batch))
        outputs = [grpcclient.InferRequestedOutput(OUTPUT_NAME)]
        events: list[tuple[float, int]] = []
        window_start = time.perf_counter() + warmup_s
        closed_at: list[float] = []  # when the window closed: later completions are the drain

        def still_sending() -> bool:
            if closed_at:
                return False
            now = time.perf_counter()
            if now < window_start + window_s:
                return True
            # Stretch a window that saw too few completions (slow configurations, big bursts).
            done = sum(1 for t, _ in merge_bursts(events) if t > window_start)
            if done < MIN_COMPLETIONS and now < window_start + window_s * MAX_WINDOW_STRETCH:
                return True
            closed_at.append(now)
            return False

        async def one_stream() -> None:
            while still_sending():
                await client.infer(model_name, [tensor], outputs=outputs, client_timeout=REQUEST_TIMEOUT_S)
                events.append((time.perf_counter(), batch))

        await asyncio.gather(*(one_stream() for _ in range(concurrency)))
        return rate_between_completions(events, window_start, closed_at[0])
    finally:
        await client.close()
