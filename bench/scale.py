"""The scale run and the result cache's cost and win, on a stand-in model.

The stand-in has the served model's signature (uint8 images in, 100 probabilities out,
the same config, metadata and Python-backend model.py) but its ONNX graph is the mean of a
grid of the pixels and a softmax (bench/standin.py): it answers in microseconds, so a
million-image job takes minutes instead of the days ResNet50 needs on a CPU, and what is
measured is Podium itself: gateway, Redis, Celery, workers, the Triton round trip.

Two clusters serve it side by side, one with the result cache and one without:
- cache cost: a job of distinct images on each (every lookup misses), alternating;
- cache win: the same job again on the caching cluster (every lookup hits);
- scale: one job of ``scale_images`` small distinct images in path mode and one of
  ``scale_upload_images`` in upload mode,
  on the caching cluster: process memory at start, middle and end, Redis bytes per
  finished image beside the cache's share, a small job's progress while it runs, and the
  throughput of the last tenth against the first.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.end_to_end import TERMINAL
from bench.memory import process_tree_rss

# Small distinct images: decoding costs little, so the run measures the pipeline around it.
SCALE_IMAGE_SIDE = 24
_FILES_PER_FOLDER = 1000


def distinct_images(folder: Path, count: int, seed: int) -> Path:
    """``count`` small PNGs, no two alike, in sub-folders of 1,000 (reused when present)."""
    from PIL import Image

    marker = folder / f".complete-{count}-{seed}"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    rng = np.random.default_rng(seed)
    for start in range(0, count, _FILES_PER_FOLDER):
        sub = folder / f"{start // _FILES_PER_FOLDER:04d}"
        sub.mkdir(parents=True)
        for index in range(start, min(start + _FILES_PER_FOLDER, count)):
            pixels = rng.integers(0, 256, size=(SCALE_IMAGE_SIDE, SCALE_IMAGE_SIDE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(sub / f"{index:06d}.png", compress_level=1)
    marker.touch()
    return folder


@dataclass
class ScaleRun:
    """What one big job showed."""

    mode: str
    images: int
    seconds: float
    first_tenth_rate: float
    last_tenth_rate: float
    rss_mib: dict[str, list[float]] = field(default_factory=dict)  # process -> [start, middle, end]
    redis_bytes_per_image: float = 0.0
    cache_bytes: float = 0.0
    redis_peak_over_idle_mib: float = 0.0  # Redis used_memory sampled through the job, above its value before
    sink_bytes_per_image: float = 0.0  # the job's result files
    # The job's lines read back in bulk and written, as `podium results` does: one rate per pass.
    results_rows_per_s: tuple[float, ...] = ()
    small_job_s: float | None = None  # a 10-image job submitted at the middle: its time to complete
    # Every tenth's rate, first to last: whether a low last tenth is the job's end or drift throughout.
    tenth_rates: tuple[float, ...] = ()

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def last_vs_first(self) -> float:
        return self.last_tenth_rate / self.first_tenth_rate if self.first_tenth_rate else 0.0


def follow_big_job(
    cluster, client, job, expected: int, small_folder: Path, mode: str, submitted: float, idle: int = 0
) -> ScaleRun:
    """Follow ``job`` (``expected`` images) to its end, sampling memory and sending a small job
    when half its images are done; then read its results back. ``submitted``: the
    ``time.perf_counter()`` at which the job was sent, its clock's zero (a path job's submit
    returns once its folder is listed, with its first chunks done or running: a clock started
    after it would credit those to the first tenth). ``idle``: Redis's used memory before the
    job was submitted."""
    from bench.end_to_end import run_job
    from podium.stores.jobstore import JobStore, ResultCache

    store = JobStore.from_url(cluster.redis_url)
    names = [proc.name for proc in cluster.processes if proc.name.startswith(("gateway", "worker"))]
    pids = {proc.name: proc.popen.pid for proc in cluster.processes if proc.name in names}
    rss = {name: [process_tree_rss(pid) / 2**20] for name, pid in pids.items()}
    started = submitted
    progress: list[tuple[float, int]] = [(0.0, 0)]
    small: dict[str, float] = {}
    total = 0
    peak = idle = idle or store.used_memory_bytes()
    for update in client.watch(job.id):
        peak = max(peak, store.used_memory_bytes())
        now = time.perf_counter() - started
        done = int(update.succeeded + update.failed)
        total = int(update.total)
        progress.append((now, done))
        if "at" not in small and done >= expected // 2:
            small["at"] = now
            for name, pid in pids.items():
                rss[name].append(process_tree_rss(pid) / 2**20)
            thread = threading.Thread(target=lambda: small.update(seconds=run_job(client, small_folder).seconds))
            thread.start()
        if update.state in TERMINAL:
            break
    seconds = time.perf_counter() - started
    if "at" in small:
        thread.join(120)
    for name, pid in pids.items():
        rss[name].append(process_tree_rss(pid) / 2**20)
    cache_bytes = ResultCache(store.client).memory_bytes()
    job_bytes = store.job_memory_bytes(job.id)  # MEMORY USAGE of the finished job's own keys
    store.client.close()
    sink_bytes, rows_per_s = _read_back(cluster, client, job.id)
    return ScaleRun(
        mode=mode,
        images=total,
        seconds=seconds,
        first_tenth_rate=_rate_between(progress, 0.0, 0.1, expected),
        last_tenth_rate=_rate_between(progress, 0.9, 1.0, expected),
        tenth_rates=tuple(_rate_between(progress, tenth / 10, (tenth + 1) / 10, expected) for tenth in range(10)),
        rss_mib=rss,
        redis_bytes_per_image=job_bytes / max(total, 1),
        cache_bytes=cache_bytes,
        small_job_s=small.get("seconds"),
        redis_peak_over_idle_mib=(peak - idle) / 2**20,
        sink_bytes_per_image=sink_bytes / max(total, 1),
        results_rows_per_s=rows_per_s,
    )


# Passes over a completed job's results: one ~1 s pass read 98k rows/s where passes by hand
# read 148k-281k (docs/performance.md, 00x); the median of three is the figure.
READ_BACK_PASSES = 3


def _read_back(cluster, client, job_id: str) -> tuple[int, tuple[float, ...]]:
    """The job's result files' bytes (once compacted), and its lines read back in bulk and
    written to a file per second, as `podium results JOB --output FILE` does, per pass."""
    from podium.client.bulk import batch_lines
    from podium.client.output import write_lines
    from podium.stores.resultsink import COMPACTED, open_sink
    from podium.stores.resultsink.storage import file_url_path

    url = cluster.gateway_settings.results_url
    if not url.startswith("file://"):
        return 0, ()
    sink, folder = open_sink(url), file_url_path(url) / job_id
    deadline = time.monotonic() + 600
    while sink.names(job_id) != [COMPACTED] and time.monotonic() < deadline:
        time.sleep(0.5)
    size = sum(entry.stat().st_size for entry in folder.iterdir())
    output, rates = folder.parent / f"{job_id}.jsonl", []
    for _ in range(READ_BACK_PASSES):
        started = time.perf_counter()
        rows = write_lines(output, (line for batch in client.result_batches(job_id) for line in batch_lines(batch)))
        rates.append(rows / (time.perf_counter() - started))
        output.unlink()
    return size, tuple(rates)


def _rate_between(progress: list[tuple[float, int]], low: float, high: float, total: int) -> float:
    """Images per second while the job went from ``low`` to ``high`` of its images: between the
    last update at or before ``low`` and the first at or past ``high`` (progress comes in steps,
    so one update may cross the whole window; the two that enclose it measure it).

    ``progress`` starts at the submission, (0.0, 0). A window that opens there but saw an
    update inside it opens at that update instead: a path job's submit lists its whole folder
    while its first chunks run, so the images before its first update were done at the
    listing's pace, not the job's (counting them from the submission understates the first
    tenth, counting them from the submit's return overstates it)."""
    if not total or not progress:
        return 0.0
    before = [(t, d) for t, d in progress if d <= low * total]
    first = before[-1] if before else progress[0]
    if first == progress[0]:
        first = next(((t, d) for t, d in progress if low * total < d < high * total), first)
    last = next(((t, d) for t, d in progress if d >= high * total), progress[-1])
    if last[0] <= first[0]:
        return 0.0
    return (last[1] - first[1]) / (last[0] - first[0])


# --- the phase -----------------------------------------------------------------------------


def measure_scale_and_cache(run, caching, plain) -> None:
    """The cache's cost and win, then the big job in path and upload mode (see the docstring).

    ``caching`` and ``plain``: (LocalCluster, PodiumClient) pairs serving the stand-in, with
    and without the result cache."""
    from bench import end_to_end
    from bench import figures as f
    from bench.pipeline import measure_pipeline
    from bench.request_costs import request_costs
    from podium.stores.jobstore import JobStore, ResultCache

    sizes, work = run.sizes, run.options.work_dir
    run.log("pipeline: the stand-in model in path mode against the decode floor, side by side")
    measure_pipeline(run, *plain, run.data.pipeline, plain[0].settings.workers)
    run.log("images per request: client CPU per image and Triton's batch size, stand-in model")
    request_costs(run, plain[0])
    store = JobStore.from_url(caching[0].redis_url)
    cache = ResultCache(store.client)
    unique = distinct_images(work / "images" / "cache-distinct", sizes.cache_images, seed=11)
    small = distinct_images(work / "images" / "scale-small", 10, seed=13)
    run.log(f"result cache: {sizes.cache_images} distinct images, cache on and off, then the same again")
    on, off, hits = [], [], []
    for number in range(sizes.repeats):
        # Fresh bytes each round on the caching side would need new images; instead the
        # cache is emptied, so that every lookup of the round misses.
        cache.clear()
        on.append(end_to_end.run_job(caching[1], unique).images_per_s)
        off.append(end_to_end.run_job(plain[1], unique).images_per_s)
        hits.append(end_to_end.run_job(caching[1], unique).images_per_s)
        run.results.rounds.append({f.CACHE_MISSES: on[-1], f.CACHE_OFF: off[-1], f.CACHE_HITS: hits[-1]})
        run.log(f"  round {number + 1}: off {off[-1]:.0f}, on (misses) {on[-1]:.0f}, on (hits) {hits[-1]:.0f} img/s")
    label = f"stand-in model, {sizes.cache_images} distinct small PNGs"
    run.results.add(f.CACHE_OFF, f"{label}, result cache off", f.THROUGHPUT, off)
    run.results.add(f.CACHE_MISSES, f"{label}, result cache on (all miss)", f.THROUGHPUT, on)
    run.results.add(f.CACHE_HITS, f"{label} again, result cache on (all hit)", f.THROUGHPUT, hits)
    _cache_overhead(run, on, off)
    cache.clear()

    cluster, client = caching
    for mode, count, seed in (("path", sizes.scale_images, 17), ("upload", sizes.scale_upload_images, 19)):
        run.log(f"scale: {count:,} distinct small PNGs (made once, then reused)")
        images = distinct_images(work / "images" / f"scale-{mode}", count, seed=seed)
        run.log(f"scale: a {count:,}-image job in {mode} mode on the stand-in model")
        scale = _big_job(cluster, client, images, count, small, mode)
        client.delete(scale_job_id(client, mode))
        cache.clear()
        run.results.scale_runs.append(scale.__dict__ | {"images_per_s": scale.images_per_s})
        run.results.add(
            f.SCALE_FIRST_TENTH.format(mode=mode),
            f"scale, {mode} mode: first tenth",
            f.THROUGHPUT,
            [scale.first_tenth_rate],
        )
        run.results.add(
            f.SCALE_LAST_TENTH.format(mode=mode),
            f"scale, {mode} mode: last tenth",
            f.THROUGHPUT,
            [scale.last_tenth_rate],
        )
        run.results.add(
            f.SCALE_REDIS_BYTES.format(mode=mode),
            f"scale, {mode} mode: Redis bytes per finished image",
            f.BYTES,
            [scale.redis_bytes_per_image],
            f"cache beside it: {scale.cache_bytes / 2**20:.1f} MiB",
        )
        run.results.add(
            f.SCALE_REDIS_PEAK.format(mode=mode),
            f"scale, {mode} mode: Redis used_memory through the job, above idle",
            f.MIB,
            [scale.redis_peak_over_idle_mib],
            "sampled at each progress update; the result cache's entries included",
        )
        run.results.add(
            f.SCALE_SINK_BYTES.format(mode=mode),
            f"scale, {mode} mode: result file bytes per image",
            f.BYTES,
            [scale.sink_bytes_per_image],
        )
        if mode == "path" and scale.results_rows_per_s:
            run.results.add(
                f.RESULTS_ROWS,
                f"{scale.images:,} rows of a completed job read back in bulk and written as JSON lines",
                "rows/s",
                list(scale.results_rows_per_s),
                f"median of {len(scale.results_rows_per_s)} passes, each reading the whole job",
            )
        memory = "; ".join(
            f"{name} {' → '.join(f'{v:.0f}' for v in values)} MiB" for name, values in scale.rss_mib.items()
        )
        small_note = f"; a 10-image job at the middle took {scale.small_job_s:.1f} s" if scale.small_job_s else ""
        tenths = " ".join(f"{rate:.0f}" for rate in scale.tenth_rates)
        run.results.notes.append(
            f"scale, {mode} mode: {scale.images:,} images in {scale.seconds:.0f} s ({scale.images_per_s:.0f} img/s; "
            f"by tenths {tenths}); RSS start → middle → end: {memory}{small_note}"
        )
        run.log("  " + run.results.notes[-1])
    store.client.close()


def _cache_overhead(run, on: list[float], off: list[float]) -> None:
    """What the cache adds to an image that misses (sha256, a GET, the bounded SET), as a share
    of the real model's end-to-end time per image: the cost a job without duplicates pays."""
    from bench import figures as f

    real = run.results.median(f.E2E_SPORTS)
    added_s = [1 / miss - 1 / plain for miss, plain in zip(on, off, strict=True)]
    if not real:
        return
    run.results.add(
        f.CACHE_OVERHEAD,
        "result cache's cost per image that misses, share of the real model's end-to-end time",
        f.PERCENT,
        [100 * added * real for added in added_s],
        f"{statistics.median(added_s) * 1000:.2f} ms per image on the stand-in, against {1000 / real:.0f} ms end to end",
    )


def scale_job_id(client, mode: str) -> str:
    return next(iter(client.list_jobs(name=f"scale {mode}"))).id


def _big_job(cluster, client, images: Path, expected: int, small: Path, mode: str) -> ScaleRun:
    from podium.stores.jobstore import JobStore

    name = f"scale {mode}"
    store = JobStore.from_url(cluster.redis_url)
    idle = store.used_memory_bytes()
    store.client.close()
    submitted = time.perf_counter()
    if mode == "path":
        job = client.submit_path(str(images.resolve()), name=name)
        return follow_big_job(cluster, client, job, expected, small, mode, submitted, idle)
    # An upload returns when its last file is in; the job is followed from its start.
    failure: list[BaseException] = []

    def upload() -> None:
        try:
            client.submit_folder(images, name=name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = list(client.list_jobs(name=name))
        if listed:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"the upload job did not appear: {failure}")
    result = follow_big_job(cluster, client, listed[0], expected, small, mode, submitted, idle)
    uploader.join(60)
    if failure:
        raise failure[0]
    return result
