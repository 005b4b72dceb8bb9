"""The phases of a bench run: each measures one kind of figure and adds it to the results."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # both pull in gRPC and Redis clients; the run imports them when it starts
    from podium.client.api import PodiumClient
    from podium.cluster import LocalCluster

from bench import baseline, end_to_end, pipeline, triton_direct
from bench import figures as f
from bench.cpu_usage import component_cpu_seconds, per_image_ms
from bench.datasets import BenchData
from bench.figures import MILLISECONDS, SECONDS, THROUGHPUT, BenchResults
from bench.memory import PeakRss
from bench.options import BenchOptions, Sizes
from bench.triton_direct import TritonCell
from export.raw_speed import RawOnnxRuntime, RawRun, best_run
from export.served import ServedModel
from podium.core.jobs import walk_files

# After a cancelled job, let its in-flight chunks drain before the next measurement.
SETTLE_S = 2.0
DECODE_SAMPLE_IMAGES = 200


class Log:
    """Timestamped progress lines of a run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.console.print(f"[dim][{time.perf_counter() - self.started:5.0f} s][/] {message}", highlight=False)


@dataclass
class ServedCluster:
    """One served model as the run uses it: its files, cluster, gateway client and raw session."""

    served: ServedModel
    cluster: LocalCluster
    client: PodiumClient
    raw: RawOnnxRuntime
    raw_best: RawRun | None = None


@dataclass
class Run:
    """Everything one run shares: its options, sizes, image folders, results and log."""

    options: BenchOptions
    sizes: Sizes
    data: BenchData
    results: BenchResults
    log: Log


def raw_sweep(run: Run, raw: RawOnnxRuntime, label: str) -> RawRun:
    run.log(f"raw onnxruntime ({label}): batch sweep {list(run.sizes.raw_batches)}")
    runs = raw.sweep(run.sizes.raw_batches, run.sizes.sweep_window_s)
    run.results.raw_sweeps[label] = [{"batch": r.batch, "images_per_s": r.images_per_s} for r in runs]
    best = best_run(runs)
    shown = ", ".join(f"batch {r.batch} {r.images_per_s:.1f}" for r in runs)
    run.log(f"raw onnxruntime ({label}): {shown} img/s; best batch {best.batch}")
    return best


def triton_sweep(run: Run, main: ServedCluster) -> TritonCell:
    sizes = run.sizes
    run.log("Triton direct: sweeping concurrency x client batch")
    cells = triton_direct.sweep(
        main.cluster.triton_url,
        main.served.model_name,
        sizes.triton_concurrency,
        sizes.triton_batches,
        sizes.warmup_s,
        sizes.sweep_window_s,
    )
    run.results.triton_sweep = [asdict(cell) for cell in cells]
    best = triton_direct.best_cell(cells)
    run.log(f"Triton direct: best {best.images_per_s:.1f} img/s at {best.concurrency} in flight x batch {best.batch}")
    return best


def measure_round(
    run: Run, main: ServedCluster, quantised: ServedCluster | None, best: TritonCell, encoded: list[bytes], port: int
) -> dict[str, float]:
    """Each throughput figure once, back to back; raw onnxruntime before and after the
    224x224 job, averaged: a job runs ~10x longer than a raw window, and the host's speed
    drifts within a round, so one window before it pairs poorly with the job it is the
    target's denominator for."""
    sizes, data = run.sizes, run.data
    assert main.raw_best is not None

    def raw() -> float:
        return main.raw.measure(main.raw_best.batch, sizes.best_window_s).images_per_s

    row = {
        f.RAW: raw(),
        f.RAW_WITH_DECODE: main.raw.measure_with_decode(
            encoded[:DECODE_SAMPLE_IMAGES], main.raw_best.batch, sizes.best_window_s
        ),
    }
    cell = triton_direct.measure(
        main.cluster.triton_url,
        main.served.model_name,
        best.concurrency,
        best.batch,
        sizes.warmup_s,
        sizes.best_window_s,
    )
    if cell.images_per_s is not None:
        row[f.TRITON] = cell.images_per_s
    before = component_cpu_seconds()
    job = end_to_end.run_job(main.client, data.sports)
    row[f.E2E_SPORTS] = job.images_per_s
    run.results.cpu_per_image.append(per_image_ms(before, component_cpu_seconds(), job.images))
    row[f.RAW] = statistics.fmean((row[f.RAW], raw()))
    if main.served.explains:
        row[f.E2E_EXPLAINED] = end_to_end.run_job(main.client, data.sports, explain=True).images_per_s
    row[f.E2E_MIXED] = end_to_end.run_job(main.client, data.mixed).images_per_s
    row[f.BASELINE] = baseline.classify_one_by_one(port, encoded)
    if quantised and quantised.raw_best:
        row[f.INT8_RAW] = quantised.raw.measure(quantised.raw_best.batch, sizes.best_window_s).images_per_s
        row[f.INT8_E2E] = end_to_end.run_job(quantised.client, data.sports).images_per_s
    return row


def dataset_sizes(encoded: list[bytes]) -> dict:
    return {"images": len(encoded), "mean_bytes": round(sum(map(len, encoded)) / max(len(encoded), 1))}


def throughput_figures(run: Run, main: ServedCluster, quantised: ServedCluster | None, best: TritonCell) -> None:
    results, data = run.results, run.data

    def samples(key: str) -> list[float] | None:
        return [row[key] for row in results.rounds if key in row] or None

    sports, mixed = end_to_end.count_images(data.sports), end_to_end.count_images(data.mixed)
    batch = main.raw_best.batch if main.raw_best else "?"
    results.add(
        f.RAW,
        f"raw onnxruntime (batch {batch}, no decode)",
        THROUGHPUT,
        samples(f.RAW),
        "a round's: before and after its 224x224 job, averaged",
    )
    results.add(
        f.RAW_WITH_DECODE,
        f"raw onnxruntime + decode (batch {batch}, decoded in 1 thread)",
        THROUGHPUT,
        samples(f.RAW_WITH_DECODE),
    )
    results.add(
        f.TRITON,
        f"Triton direct ({best.concurrency} in flight x batch {best.batch})",
        THROUGHPUT,
        samples(f.TRITON),
    )
    results.add(f.E2E_SPORTS, f"end to end, {sports} 224x224 JPEGs", THROUGHPUT, samples(f.E2E_SPORTS))
    results.add(f.E2E_EXPLAINED, f"end to end, {sports} 224x224 JPEGs, explained", THROUGHPUT, samples(f.E2E_EXPLAINED))
    results.add(f.E2E_MIXED, f"end to end, {mixed} mixed-size photos", THROUGHPUT, samples(f.E2E_MIXED))
    results.add(f.BASELINE, f"one request per image, {sports} JPEGs", THROUGHPUT, samples(f.BASELINE))
    for key, what in ((f.DECODE_224, "224x224 JPEG"), (f.DECODE_MIXED, "mixed-size photo")):
        per_image = samples(key)
        cores = f"= {statistics.median(per_image) * 1000:.1f} cores per 1,000 img/s" if per_image else ""
        results.add(key, f"decode + preprocess, one {what} (1 thread)", MILLISECONDS, per_image, cores)
    int8_note = "" if quantised else next((n for n in results.notes if n.startswith("INT8")), "")
    int8_batch = quantised.raw_best.batch if quantised and quantised.raw_best else "-"
    results.add(f.INT8_RAW, f"INT8 raw onnxruntime (batch {int8_batch})", THROUGHPUT, samples(f.INT8_RAW), int8_note)
    results.add(f.INT8_E2E, f"INT8 end to end, {sports} 224x224 JPEGs", THROUGHPUT, samples(f.INT8_E2E), int8_note)


def map_cost(run: Run, main: ServedCluster) -> None:
    """What an explained job's maps add to each image's row in the result files, plain and
    explained side by side."""
    from podium.stores.resultsink import COMPACTED, open_sink
    from podium.stores.resultsink.storage import file_url_path

    url = main.cluster.gateway_settings.results_url
    if not main.served.explains or not url.startswith("file://"):
        run.results.notes.append("explained jobs: skipped (no maps in the export, or no result folder)")
        return
    run.log("explained jobs: result file bytes of a plain and an explained job of the same images")
    plain = end_to_end.run_job(main.client, run.data.sports)
    explained = end_to_end.run_job(main.client, run.data.sports, explain=True)
    sink = open_sink(url)

    def size(job_id: str) -> int:
        deadline = time.monotonic() + 120
        while sink.names(job_id) != [COMPACTED] and time.monotonic() < deadline:
            time.sleep(0.2)
        return (file_url_path(url) / job_id / COMPACTED).stat().st_size

    added = (size(explained.job_id) - size(plain.job_id)) / explained.images
    for job in (plain, explained):
        main.client.delete(job.job_id)
    run.results.add(
        f.MAP_FILE_BYTES,
        "result file bytes a map adds to an image's row",
        f.BYTES,
        [added],
        f"compacted Parquet (zstd) of a {explained.images}-image job, explained minus plain",
    )


def cli_once(run: Run, main: ServedCluster) -> None:
    run.log("end to end: `podium submit --wait` once, through the CLI")
    gateway = main.cluster.gateway_address
    cli = end_to_end.run_cli_submit(gateway, run.data.sports, run.options.work_dir / "cli-results.jsonl")
    run.results.add(
        f.E2E_CLI,
        f"`podium submit --wait`, {cli.images} JPEGs (once)",
        THROUGHPUT,
        [cli.images_per_s],
        "includes the CLI's start-up",
    )


def latency(run: Run, main: ServedCluster) -> None:
    """A 1-image and a small job per repeat, each repeat preceded by a few batch-1 inferences
    in this process: 'one inference' of the latency target is measured under the same load."""
    small = run.sizes.small_job_images
    run.log(f"latency: a 1-image and a {small}-image job, {run.sizes.latency_repeats} times each, idle cluster")
    singles, smalls, inferences = [], [], []
    for _ in range(run.sizes.latency_repeats):
        inferences.extend(main.raw.measure(1, 0.0).run_seconds)
        singles.append(end_to_end.run_job(main.client, run.data.single))
        smalls.append(end_to_end.run_job(main.client, run.data.small_job))
    add = run.results.add
    add(
        f.INFERENCE_LATENCY,
        "one inference (raw onnxruntime, batch 1)",
        MILLISECONDS,
        inferences,
        "'one inference' of the latency target",
    )
    add(f.LATENCY_SINGLE, "1-image job, as the client sees it", MILLISECONDS, [r.seconds for r in singles])
    add(
        f.LATENCY_SINGLE_SERVER,
        "1-image job, until the gateway's finished_at",
        MILLISECONDS,
        [r.server_seconds for r in singles],
        "without the watch stream's polling",
    )
    add(f.LATENCY_SMALL, f"{small}-image job alone", SECONDS, [r.seconds for r in smalls])
    add(
        f.LATENCY_SMALL_SERVER,
        f"{small}-image job alone, until finished_at",
        SECONDS,
        [r.server_seconds for r in smalls],
    )


def fairness(run: Run, main: ServedCluster) -> None:
    data, sizes = run.data, run.sizes
    big = end_to_end.count_images(data.big_job)
    run.log(f"fairness: a {sizes.small_job_images}-image job {sizes.fairness_delay_s:.0f} s into a {big}-image job")
    times = []
    for _ in range(sizes.repeats):
        outcome = end_to_end.run_fairness(main.client, data.big_job, data.small_job, sizes.fairness_delay_s)
        times.append(outcome.small.seconds)
        run.results.fairness_runs.append(asdict(outcome))
        run.log(
            f"  small job {outcome.small.seconds:.2f} s; big job "
            f"{outcome.big_done_before}->{outcome.big_done_after} of {outcome.big_total} meanwhile"
        )
        time.sleep(SETTLE_S)
    run.results.add(
        f.FAIRNESS,
        f"{sizes.small_job_images}-image job while a {big}-image job runs",
        SECONDS,
        times,
        "big job in path mode, cancelled after",
    )


def files(folder: Path) -> list[Path]:
    return [folder / rel for rel in walk_files(folder)]


def camera(run: Run, main: ServedCluster) -> None:
    """Camera-sized photos: decode cost exact and fast, fast's agreement with exact, a 24 MP job."""
    from bench import camera as cam  # imports scikit-image and torch (the judge's training and export)
    from export.served import exported_model
    from podium.core.imaging import DecodeMode, image_files
    from podium.stores.modelrepo import onnx_runner
    from podium.train.demo import demo_model

    images, results, sizes = run.options.work_dir / "images", run.results, run.sizes
    job_folder = cam.camera_folder(images, sizes.camera_job_images)
    one = image_files(job_folder)[0]
    run.log(f"camera photos: decode cost of {one.name} (24 MP), exact and fast, each in a fresh process")
    for mode, time_key, memory_key in (
        (DecodeMode.EXACT, f.DECODE_24MP_EXACT, f.DECODE_24MP_EXACT_MEMORY),
        (DecodeMode.FAST, f.DECODE_24MP_FAST, f.DECODE_24MP_FAST_MEMORY),
    ):
        costs = [cam.decode_cost(one, mode) for _ in range(sizes.repeats)]
        results.add(
            time_key,
            f"24 MP JPEG, {mode.value} decode + preprocess (1 thread)",
            MILLISECONDS,
            [c.seconds for c in costs],
        )
        results.add(
            memory_key, f"24 MP JPEG, {mode.value} decode: peak memory added", f.MIB, [c.peak_mib for c in costs]
        )
    run.log("camera photos: the judge of fast decoding, the demo model (trained once per work folder)")
    judge = demo_model(run.options.work_dir / "demo", Console(stderr=True))
    served_judge = exported_model(run.options.work_dir / "demo" / "repo", "demo", judge.checkpoint, "cpu", run.log)
    folder = cam.sizes_folder(images, sizes.camera_photos)
    run.log(f"camera photos: fast vs exact decoding on {sizes.camera_photos} photos, judged by the demo model")
    agreement = cam.fast_agreement(onnx_runner(served_judge.onnx_path), folder)
    note = f"{agreement.drafted} of {agreement.images} photos drafted (the others decode exactly)"
    results.add(
        f.FAST_AGREEMENT,
        f"fast vs exact decoding: top-1 agreement where exact's margin > {cam.DECIDED_MARGIN}",
        f.PERCENT,
        [100 * agreement.top1_agreement],
        f"{agreement.decided} of {agreement.images} photos decided; {note}",
    )
    results.add(
        f.FAST_AGREEMENT_ALL,
        "fast vs exact decoding: top-1 agreement, close calls included",
        f.PERCENT,
        [100 * agreement.top1_agreement_all],
        note,
    )
    results.add(f.FAST_MAX_DIFF, "fast vs exact decoding: max |Δp|", f.PROBABILITY, [agreement.max_abs_diff], note)
    results.add(
        f.REENCODED_MAX_DIFF,
        f"the judge's sensitivity: photos re-encoded at JPEG q{cam.REENCODE_QUALITY}, max |Δp|",
        f.PROBABILITY,
        [agreement.reencoded_max_abs_diff],
        "exact decoding of each photo saved once more; for scale, no target",
    )
    # Path mode for both sides: an archive of camera photos is a folder or a bucket, and an
    # upload of 5-6 MB photos would measure the gateway and Redis moving bytes (~60 CPU-ms a photo).
    reference = run.data.big_job / "class_00"
    reference_count = end_to_end.count_images(reference)
    run.log(
        f"camera photos: {sizes.camera_job_images} 24 MP JPEGs and {reference_count} 224x224 JPEGs end to end, "
        f"path mode, {sizes.repeats} times"
    )
    pipeline.path_job(main.client, job_folder)  # warm-up: the page cache
    workers = [proc.popen.pid for proc in main.cluster.processes if proc.name.startswith("worker")]
    camera_rates, small_rates, peaks = [], [], []
    for _ in range(sizes.repeats):
        with PeakRss(workers) as peak:
            seconds, count = pipeline.path_job(main.client, job_folder)
        camera_rates.append(count / seconds)
        peaks.append(peak.bytes / 2**20)
        seconds, count = pipeline.path_job(main.client, reference)
        small_rates.append(count / seconds)
    decode_note = "the workers' PODIUM_DECODE (fast unless --env says otherwise)"
    results.add(
        f.E2E_CAMERA,
        f"end to end, {sizes.camera_job_images} 24 MP JPEGs, path mode",
        THROUGHPUT,
        camera_rates,
        decode_note,
    )
    results.add(
        f.CAMERA_WORKERS_PEAK,
        f"end to end, {sizes.camera_job_images} 24 MP JPEGs: the {len(workers)} workers' peak RSS",
        f.MIB,
        peaks,
        "process trees (Celery's main and pool processes) summed, sampled every 50 ms",
    )
    results.add(
        f.E2E_224_PATH,
        f"end to end, {reference_count} 224x224 JPEGs, path mode",
        THROUGHPUT,
        small_rates,
        "alternating with the 24 MP job",
    )
