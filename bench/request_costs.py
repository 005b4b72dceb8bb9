"""What sending N images per Triton request costs the sender, on the stand-in model."""

from __future__ import annotations

import time

import numpy as np

REQUEST_WINDOW_S = 3.0
REQUESTS_IN_FLIGHT = 4


def request_costs(run, cluster) -> None:
    """This process's CPU per image sending N images per request (serialisation, gRPC, the
    fingerprint check) to the stand-in's Triton, and the batch size Triton formed: with the
    decode figures, a worker's CPU per image at PODIUM_IMAGES_PER_REQUEST = N."""
    from concurrent.futures import ThreadPoolExecutor

    from bench import figures as f
    from podium.cluster.triton import inference_counts
    from podium.stores.inference import TritonClassifier

    classifier = TritonClassifier(cluster.triton_url, run.options.model_name)
    pixels = np.random.default_rng(3).integers(0, 256, size=(max(f.IMAGES_PER_REQUEST), 224, 224, 3), dtype=np.uint8)
    try:
        for n in f.IMAGES_PER_REQUEST:
            batch = pixels[:n]
            classifier.infer(batch)  # warm-up
            before_counts = inference_counts(cluster.triton_metrics_port)
            cpu_started, deadline = time.process_time(), time.perf_counter() + REQUEST_WINDOW_S
            with ThreadPoolExecutor(REQUESTS_IN_FLIGHT) as pool:
                sent = sum(pool.map(_send_until, [classifier] * REQUESTS_IN_FLIGHT, [batch] * REQUESTS_IN_FLIGHT,
                                    [deadline] * REQUESTS_IN_FLIGHT))  # fmt: skip
            cpu_ms = (time.process_time() - cpu_started) * 1000 / sent
            after_counts = inference_counts(cluster.triton_metrics_port)
            executions = after_counts[1] - before_counts[1]
            mean_batch = (after_counts[0] - before_counts[0]) / executions if executions else 0.0
            run.results.add(
                f.REQUEST_CPU.format(n=n), f"client CPU per image, {n} per request", f.MILLISECONDS, [cpu_ms / 1000]
            )
            run.results.add(f.TRITON_BATCH.format(n=n), f"Triton's mean batch, {n} per request", "images", [mean_batch])
            run.log(
                f"  {n} per request: {cpu_ms:.2f} CPU ms per image in this process, Triton's mean batch {mean_batch:.1f}"
            )
    finally:
        classifier.close()


def _send_until(classifier, batch: np.ndarray, deadline: float) -> int:
    """Send ``batch`` again and again until ``deadline``; the images sent."""
    sent = 0
    while time.perf_counter() < deadline:
        classifier.infer(batch)
        sent += len(batch)
    return sent
