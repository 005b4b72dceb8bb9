"""The pipeline around the model against the decode floor, on the stand-in model.

- Decode floor: the same 224x224 JPEGs read, decoded and preprocessed exactly as a worker
  does, by as many processes as the cluster has workers and nothing else: what the cores
  can do when decoding is all they do. Measured just before and just after each job; the
  round's floor is the mean of the two.
- The stand-in pipeline: a path-mode job of those files on the cluster without the result
  cache; its images/s, and the CPU milliseconds per image of every process.
- Overhead: the CPU per image of all processes minus the decode's own (measured in the
  floor, on the same files) and minus the stand-in model's own (its ONNX file in
  onnxruntime on one thread, a request's batch at a time: ~5 µs, the mean of a grid of
  the pixels): "everything but decoding and the model".
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench import figures as f
from bench.cpu_usage import component_cpu_seconds, per_image_ms
from bench.end_to_end import TERMINAL

# A request's images at a time, as the workers send them (PODIUM_IMAGES_PER_REQUEST).
MODEL_BATCH = 16


def decode_share(paths: list[str]) -> tuple[int, float]:
    """Decode and preprocess ``paths`` (a floor process's share): (images, CPU seconds)."""
    from podium.core.allocator import tune_malloc
    from podium.core.imaging import Decoder

    tune_malloc()  # as a worker's pool process does
    decoder = Decoder()
    started = time.process_time()
    for path in paths:
        with open(path, "rb") as file:
            decoder.model_input(file.read())
    return len(paths), time.process_time() - started


def decode_floor(files: list[Path], processes: int) -> tuple[float, float]:
    """(images/s, CPU seconds per image) of ``processes`` processes decoding ``files``."""
    # spawn: this process has live gRPC threads, and a forked child of it can abort.
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(decode_share, [[str(files[0])]] * processes))  # started and imported
        shares = [[str(path) for path in files[number::processes]] for number in range(processes)]
        started = time.perf_counter()
        done = list(pool.map(decode_share, shares))
        seconds = time.perf_counter() - started
    images = sum(count for count, _ in done)
    return images / seconds, sum(cpu for _, cpu in done) / images


def model_cpu_per_image(onnx_path: Path, files: list[Path], batch: int = MODEL_BATCH, rounds: int = 20) -> float:
    """CPU seconds per image of the stand-in model itself, on ``batch`` of ``files`` at a time."""
    from podium.core.imaging import Decoder
    from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME
    from podium.stores.modelrepo import onnx_session

    decoder = Decoder()
    pixels = np.stack([decoder.model_input(path.read_bytes()) for path in files[:batch]])
    session = onnx_session(onnx_path, threads=1)
    session.run([OUTPUT_NAME], {INPUT_NAME: pixels})  # warm-up
    started = time.process_time()
    for _ in range(rounds):
        session.run([OUTPUT_NAME], {INPUT_NAME: pixels})
    return (time.process_time() - started) / (rounds * len(pixels))


def path_job(client, folder: Path) -> tuple[float, int]:
    """A path-mode job of ``folder`` followed to its end: (seconds, images)."""
    started = time.perf_counter()
    job = client.submit_path(str(folder.resolve()), name=f"bench pipeline {folder.name}")
    for update in client.watch(job.id):
        job = update
        if job.state in TERMINAL:
            break
    seconds = time.perf_counter() - started
    if job.succeeded != job.total:
        raise RuntimeError(f"pipeline job {job.id}: {job.failed} of {job.total} images failed")
    client.delete(job.id)
    return seconds, int(job.total)


def measure_pipeline(run, cluster, client, folder: Path, workers: int) -> None:
    """Rounds of: the decode floor, the stand-in job of the same files, the floor again; figures and targets."""
    from export.served import served_model

    files = sorted(path for path in folder.rglob("*.jpg"))
    served = served_model(cluster.settings.model_repository, cluster.gateway_settings.model_name)
    model_cpu = model_cpu_per_image(served.onnx_path, files)
    run.log(f"  the stand-in model itself: {model_cpu * 1000:.3f} CPU-ms per image (onnxruntime, one thread)")
    path_job(client, folder)  # warm-up: clients, Triton's first batches, the page cache
    floors, rates, overheads, decodes = [], [], [], []
    for number in range(run.sizes.repeats):
        # The floor before and after the job, their mean its yardstick: a shared host's load
        # drifts within seconds, and a floor on one side only carried that drift into the ratio.
        floor_before, decode_before = decode_floor(files, workers)
        before = component_cpu_seconds()
        seconds, images = path_job(client, folder)
        spent = per_image_ms(before, component_cpu_seconds(), images)
        floor_after, decode_after = decode_floor(files, workers)
        floor, decode_cpu = (floor_before + floor_after) / 2, (decode_before + decode_after) / 2
        spent.pop("bench client (upload, watch)", None)
        overhead_ms = sum(spent.values()) - (decode_cpu + model_cpu) * 1000
        floors.append(floor)
        rates.append(images / seconds)
        overheads.append(overhead_ms / 1000)
        run.results.rounds.append({f.DECODE_FLOOR: floor, f.PIPELINE_STANDIN: rates[-1]})
        run.results.pipeline_cpu.append(spent)
        decodes.append(decode_cpu)
        by_process = ", ".join(f"{name} {ms:.2f}" for name, ms in spent.items())
        run.log(
            f"  round {number + 1}: floor {floor:.0f} img/s ({floor_before:.0f} before the job, {floor_after:.0f} after), "
            f"stand-in job {rates[-1]:.0f} img/s; CPU ms per image: "
            f"decode {decode_cpu * 1000:.2f}; {by_process}; overhead {overhead_ms:.2f}"
        )
    label = f"{len(files)} 224x224 JPEGs"
    run.results.add(f.DECODE_FLOOR, f"decode floor: {workers} processes decoding {label}", f.THROUGHPUT, floors)
    run.results.add(f.PIPELINE_STANDIN, f"stand-in model, path mode, {label}", f.THROUGHPUT, rates)
    run.results.add(
        f.PIPELINE_OVERHEAD,
        "pipeline CPU per image beyond decoding and the model (all processes, stand-in model)",
        f.MILLISECONDS,
        overheads,
        f"the processes' total less decoding ({statistics.median(decodes) * 1000:.2f} ms, in the floor) and the "
        f"stand-in model ({model_cpu * 1000:.3f} ms)",
    )
