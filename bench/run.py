"""run_bench: every figure of `podium bench`, measured side by side in one run.

Order of a run: build the image folders and model files; start one cluster (and a second
one serving the INT8 model, when it exists) that stays up for the whole run; sweep raw
onnxruntime batch sizes and Triton's concurrency x client batch; then repeat *rounds* in
which each throughput figure is measured once, so that a change in the machine's load
(it is shared) touches every figure of a round alike; then the CLI once, the latencies on
an idle cluster, and fairness. Clusters and helper processes stop however the run ends.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # both pull in gRPC and Redis clients; the run imports them when it starts
    from cluster import LocalCluster
    from podium.client import PodiumClient

from bench import baseline, end_to_end, triton_direct
from bench import figures as f
from bench.chart import write_chart
from bench.cpu_usage import component_cpu_seconds, per_image_ms
from bench.datasets import BenchData, build_bench_data
from bench.figures import MILLISECONDS, SECONDS, THROUGHPUT, BenchResults
from bench.machine import cpu_snapshot, load_average, machine_info, other_cores_used
from bench.models import ServedModel, exported_model, served_model, with_queue_delay
from bench.options import BenchOptions, Sizes
from bench.raw import RawOnnxRuntime, RawRun, best_run, decode_seconds_per_image
from bench.report import cpu_table, figures_table, results_json, sweep_table, targets_table, write_json
from bench.targets import TargetResult, evaluate
from bench.triton_direct import TritonCell

# After a cancelled job, let its in-flight chunks drain before the next measurement.
SETTLE_S = 2.0
DECODE_SAMPLE_IMAGES = 200
# Above this many cores used by other processes, the run says its figures are disturbed.
BUSY_MACHINE_CORES = 0.25
JSON_NAME = "bench.json"
CHART_NAME = "bench.png"


class _Log:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.console.print(f"[dim][{time.perf_counter() - self.started:5.0f} s][/] {message}", highlight=False)


@dataclass
class _Model:
    """One served model as the run uses it: its files, cluster, gateway client and raw session."""

    served: ServedModel
    cluster: LocalCluster
    client: PodiumClient
    raw: RawOnnxRuntime
    raw_best: RawRun | None = None


@dataclass
class _Run:
    options: BenchOptions
    sizes: Sizes
    data: BenchData
    results: BenchResults
    log: _Log


def run_bench(options: BenchOptions, console: Console) -> list[TargetResult]:
    """Measure everything, print the tables, write bench.json and bench.png; return the targets."""
    log = _Log(console)
    cpu_before = cpu_snapshot()
    results = BenchResults(machine=machine_info())
    log(f"machine: {results.machine['cpu_model']}, {results.machine['usable_cores']} cores, load {load_average()}")
    sizes = options.sizes
    images_root = options.work_dir / "images"
    log("images: building (or reusing) the image folders")
    data = build_bench_data(
        images_root, sizes.dataset_images, sizes.mixed_images, sizes.big_job_images, sizes.small_job_images
    )
    run = _Run(options, sizes, data, results, log)
    fp32, int8 = _models(run)
    results.settings = _settings(options, sizes, fp32, int8)
    with ExitStack() as stack:
        # Every cluster starts before this process opens its first gRPC channel: a child
        # forked from a process with live gRPC threads can abort before it execs.
        clusters = {
            label: stack.enter_context(_cluster(run, served, options.work_dir / f"run-{label}", images_root))
            for label, served in (("fp32", fp32), ("int8", int8))
            if served is not None
        }
        main = _connect(stack, fp32, clusters["fp32"])
        quantised = _connect(stack, int8, clusters["int8"]) if int8 else None
        _measure(run, stack, main, quantised)
    seconds = time.perf_counter() - log.started
    results.machine["load_average_at_end"] = load_average()
    other = other_cores_used(cpu_before, cpu_snapshot(), seconds)
    results.machine["other_processes_cores"] = other
    if other is not None and other > BUSY_MACHINE_CORES:
        results.notes.append(
            f"warning: other processes used {other:.2f} cores on average during this run; "
            "absolute figures are low and noisy, the per-round ratios less so"
        )
    targets = evaluate(results)
    _publish(options, results, targets, seconds, console)
    return targets


# --- set-up ---------------------------------------------------------------------------


def _models(run: _Run) -> tuple[ServedModel, ServedModel | None]:
    options, notes, work = run.options, run.results.notes, run.options.work_dir
    if options.model_repository is not None:
        fp32 = served_model(options.model_repository, options.model_name)
    else:
        fp32 = exported_model(work / "model_repository", options.model_name, options.checkpoint, "cpu", run.log)
    int8: ServedModel | None = None
    if not options.int8:
        notes.append("INT8: skipped (--no-int8)")
    else:
        try:
            int8 = exported_model(
                work / "model_repository_int8",
                options.model_name,
                options.checkpoint,
                "cpu-int8",
                run.log,
                calibration_images=run.data.mixed,
            )
        except Exception as exc:  # noqa: BLE001 - the INT8 figure is optional; the rest of the run is not
            notes.append(f"INT8: export failed: {exc}")
    if options.triton_queue_delay_us is not None:
        fp32 = with_queue_delay(fp32, options.triton_queue_delay_us, work / "served-fp32")
        if int8:
            int8 = with_queue_delay(int8, options.triton_queue_delay_us, work / "served-int8")
    for note in notes:
        run.log(note)
    return fp32, int8


def _settings(options: BenchOptions, sizes: Sizes, fp32: ServedModel, int8: ServedModel | None) -> dict:
    from cluster import ClusterSettings
    from gateway.settings import GatewaySettings
    from worker.settings import WorkerSettings

    defaults = ClusterSettings()
    gateway, worker = GatewaySettings(), WorkerSettings()
    return {
        "quick": options.quick,
        "sizes": asdict(sizes),
        "workers": options.workers or defaults.workers,
        "inflight": options.inflight or worker.inflight,
        "chunk_size": options.chunk_size or gateway.chunk_size,
        "max_queued_chunks": options.max_queued_chunks or "gateway default",
        "triton_max_queue_delay_us": fp32.max_queue_delay_us,
        "onnx_intra_op_threads": fp32.intra_op_threads,
        "extra_env": options.extra_env,
        "model": str(fp32.onnx_path),
        "int8_model": str(int8.onnx_path) if int8 else None,
        "checkpoint": str(options.checkpoint) if options.checkpoint else "untrained (speed does not depend on weights)",
    }


def _connect(stack: ExitStack, served: ServedModel, cluster: LocalCluster) -> _Model:
    from podium.client import PodiumClient

    client = stack.enter_context(PodiumClient(cluster.gateway_address))
    return _Model(served, cluster, client, RawOnnxRuntime(served))


@contextmanager
def _cluster(run: _Run, model: ServedModel, run_dir: Path, data_root: Path) -> Iterator:
    from cluster import ClusterSettings, LocalCluster
    from settings import field_values

    options = run.options
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an old Redis AOF would bring back an old run's jobs
    chosen = {
        "inflight": options.inflight,
        "chunk_size": options.chunk_size,
        "max_queued_chunks": options.max_queued_chunks,
    }
    service = {
        **field_values(options.extra_env),
        "model_name": model.model_name,
        "data_roots": str(data_root.resolve()),
        **{key: value for key, value in chosen.items() if value is not None},
    }
    settings = ClusterSettings(
        model_repository=model.repository,
        gateway_port=0,
        run_dir=run_dir,
        service=service,
        **({"workers": options.workers} if options.workers else {}),
    )
    run.log(f"cluster: starting Redis, Triton, {settings.workers} workers and the gateway for {model.repository}")
    with LocalCluster(settings) as cluster:
        run.log(f"cluster: gateway at {cluster.gateway_address}, Triton at {cluster.triton_url}, logs in {run_dir}")
        yield cluster
    run.log(f"cluster: stopped ({run_dir.name})")


# --- measuring ------------------------------------------------------------------------


def _measure(run: _Run, stack: ExitStack, main: _Model, quantised: _Model | None) -> None:
    main.raw_best = _raw_sweep(run, main.raw, "fp32")
    if quantised:
        quantised.raw_best = _raw_sweep(run, quantised.raw, "int8")
    best = _triton_sweep(run, main)
    run.log("end to end: a warm-up job on each cluster")
    for model in (main, quantised):
        if model:
            end_to_end.run_job(model.client, run.data.small_job)
    encoded = baseline.read_images(_files(run.data.sports))
    mixed = baseline.read_images(_files(run.data.mixed))
    run.results.settings["datasets"] = {"224x224": _sizes(encoded), "mixed": _sizes(mixed)}
    port = stack.enter_context(baseline.single_image_service(main.served))
    for number in range(1, run.sizes.repeats + 1):
        run.log(f"round {number}/{run.sizes.repeats}")
        row = _round(run, main, quantised, best, encoded, port)
        row[f.DECODE_224] = decode_seconds_per_image(encoded[:DECODE_SAMPLE_IMAGES])
        row[f.DECODE_MIXED] = decode_seconds_per_image(mixed)
        run.results.rounds.append(row)
        run.log("  " + ", ".join(f"{key} {value:.3g}" for key, value in row.items()))
    _throughput_figures(run, main, quantised, best)
    _cli_once(run, main)
    _latency(run, main)
    _fairness(run, main)


def _raw_sweep(run: _Run, raw: RawOnnxRuntime, label: str) -> RawRun:
    run.log(f"raw onnxruntime ({label}): batch sweep {list(run.sizes.raw_batches)}")
    runs = raw.sweep(run.sizes.raw_batches, run.sizes.sweep_window_s)
    run.results.raw_sweeps[label] = [{"batch": r.batch, "images_per_s": r.images_per_s} for r in runs]
    best = best_run(runs)
    shown = ", ".join(f"batch {r.batch} {r.images_per_s:.1f}" for r in runs)
    run.log(f"raw onnxruntime ({label}): {shown} img/s; best batch {best.batch}")
    return best


def _triton_sweep(run: _Run, main: _Model) -> TritonCell:
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


def _round(
    run: _Run, main: _Model, quantised: _Model | None, best: TritonCell, encoded: list[bytes], port: int
) -> dict[str, float]:
    """Each throughput figure once, back to back."""
    sizes, data = run.sizes, run.data
    assert main.raw_best is not None
    row = {
        f.RAW: main.raw.measure(main.raw_best.batch, sizes.best_window_s).images_per_s,
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
    row[f.E2E_MIXED] = end_to_end.run_job(main.client, data.mixed).images_per_s
    row[f.BASELINE] = baseline.classify_one_by_one(port, encoded)
    if quantised and quantised.raw_best:
        row[f.INT8_RAW] = quantised.raw.measure(quantised.raw_best.batch, sizes.best_window_s).images_per_s
        row[f.INT8_E2E] = end_to_end.run_job(quantised.client, data.sports).images_per_s
    return row


def _sizes(encoded: list[bytes]) -> dict:
    return {"images": len(encoded), "mean_bytes": round(sum(map(len, encoded)) / max(len(encoded), 1))}


def _throughput_figures(run: _Run, main: _Model, quantised: _Model | None, best: TritonCell) -> None:
    results, data = run.results, run.data

    def samples(key: str) -> list[float] | None:
        return [row[key] for row in results.rounds if key in row] or None

    sports, mixed = end_to_end.count_images(data.sports), end_to_end.count_images(data.mixed)
    batch = main.raw_best.batch if main.raw_best else "?"
    results.add(f.RAW, f"raw onnxruntime (batch {batch}, no decode)", THROUGHPUT, samples(f.RAW))
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


def _cli_once(run: _Run, main: _Model) -> None:
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


def _latency(run: _Run, main: _Model) -> None:
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


def _fairness(run: _Run, main: _Model) -> None:
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


def _files(folder: Path) -> list[Path]:
    from jobs import walk_files

    return [folder / rel for rel in walk_files(folder)]


# --- output ---------------------------------------------------------------------------


def _publish(
    options: BenchOptions, results: BenchResults, targets: list[TargetResult], seconds: float, console: Console
) -> None:
    console.print(figures_table(results))
    console.print(sweep_table(results))
    if results.cpu_per_image:
        console.print(cpu_table(results))
    console.print(targets_table(targets))
    machine = results.machine
    other = machine.get("other_processes_cores")
    if other is not None:
        console.print(f"other processes on this machine used {other:.2f} cores on average during the run")
    for note in results.notes:
        console.print(note)
    json_path = options.output_dir / JSON_NAME
    write_json(json_path, results_json(results, targets, seconds))
    chart_path = options.output_dir / CHART_NAME
    title = (
        f"Podium bench {machine['date']}, {machine['cpu_model']} ({machine['usable_cores']} cores), "
        f"{'quick' if options.quick else 'full'} run of {seconds / 60:.1f} min"
    )
    write_chart(chart_path, results, targets, title)
    console.print(f"wrote {json_path} and {chart_path} in {seconds / 60:.1f} min")
