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
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:  # pulls in gRPC and Redis clients; the run imports it when it starts
    from podium.cluster import LocalCluster

from bench import baseline, end_to_end
from bench import figures as f
from bench.chart import write_chart
from bench.datasets import build_bench_data
from bench.figures import BenchResults
from bench.machine import cpu_snapshot, load_average, machine_info, other_cores_used
from bench.measure import (
    DECODE_SAMPLE_IMAGES,
    Log,
    Run,
    ServedCluster,
    camera,
    cli_once,
    dataset_sizes,
    fairness,
    files,
    latency,
    map_cost,
    measure_round,
    raw_sweep,
    throughput_figures,
    triton_sweep,
)
from bench.networks import add_networks, measure_networks
from bench.options import BenchOptions, Sizes
from bench.report import cpu_table, figures_table, results_json, sweep_table, targets_table, write_json
from bench.scale import measure_scale_and_cache
from bench.standin import standin_repository
from bench.targets import TargetResult, evaluate
from export.raw_speed import RawOnnxRuntime, decode_seconds_per_image
from export.served import ServedModel, exported_model, served_model, with_queue_delay

# Above this many cores used by other processes, the run says its figures are disturbed.
BUSY_MACHINE_CORES = 0.25
JSON_NAME = "bench.json"
CHART_NAME = "bench.png"


def run_bench(options: BenchOptions, console: Console) -> list[TargetResult]:
    """Measure everything, print the tables, write bench.json and bench.png; return the targets."""
    log = Log(console)
    cpu_before = cpu_snapshot()
    results = BenchResults(machine=machine_info())
    log(f"machine: {results.machine['cpu_model']}, {results.machine['usable_cores']} cores, load {load_average()}")
    sizes = options.sizes
    images_root = options.work_dir / "images"
    log("images: building (or reusing) the image folders")
    data = build_bench_data(
        images_root,
        sizes.dataset_images,
        sizes.mixed_images,
        sizes.big_job_images,
        sizes.small_job_images,
        sizes.pipeline_images,
    )
    run = Run(options, sizes, data, results, log)
    fp32, int8 = _models(run)
    networks = add_networks(fp32.repository, log)
    results.settings = _settings(options, sizes, fp32, int8)
    with ExitStack() as stack:
        # Every cluster starts before this process opens its first gRPC channel: a child
        # forked from a process with live gRPC threads can abort before it execs.
        clusters = {
            label: stack.enter_context(_cluster(run, served, options.work_dir / f"run-{label}", images_root))
            for label, served in (("fp32", fp32), ("int8", int8))
            if served is not None
        }
        standins = _standin_clusters(run, stack, fp32, images_root) if options.scale else {}
        main = _connect(stack, fp32, clusters["fp32"])
        quantised = _connect(stack, int8, clusters["int8"]) if int8 else None
        _measure(run, stack, main, quantised)
        run.log(f"other networks: {', '.join(networks)} end to end and in raw onnxruntime")
        measure_networks(run, main.client, networks, data.sports)
        if standins:
            measure_scale_and_cache(run, *(_client_of(stack, standins[label]) for label in ("caching", "plain")))
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


def _models(run: Run) -> tuple[ServedModel, ServedModel | None]:
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
    from gateway.settings import GatewaySettings
    from podium.cluster import ClusterSettings
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


def _connect(stack: ExitStack, served: ServedModel, cluster: LocalCluster) -> ServedCluster:
    from podium.client.api import PodiumClient

    client = stack.enter_context(PodiumClient(cluster.gateway_address))
    return ServedCluster(served, cluster, client, RawOnnxRuntime(served))


def _standin_clusters(run: Run, stack: ExitStack, fp32: ServedModel, images_root: Path) -> dict:
    """The stand-in model's two clusters, with and without the result cache (bench/scale.py)."""
    standin = standin_repository(fp32, run.options.work_dir / "model_repository_standin")
    return {
        label: stack.enter_context(
            _cluster(run, standin, run.options.work_dir / f"run-standin-{label}", images_root, result_cache=cache)
        )
        for label, cache in (("caching", True), ("plain", False))
    }


def _client_of(stack: ExitStack, cluster: LocalCluster) -> tuple:
    from podium.client.api import PodiumClient

    return cluster, stack.enter_context(PodiumClient(cluster.gateway_address))


@contextmanager
def _cluster(run: Run, model: ServedModel, run_dir: Path, data_root: Path, result_cache: bool = False) -> Iterator:
    from podium.cluster import ClusterSettings, LocalCluster
    from podium.core.settings import field_values

    options = run.options
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an old Redis AOF would bring back an old run's jobs
    chosen = {
        "inflight": options.inflight,
        "chunk_size": options.chunk_size,
        "max_queued_chunks": options.max_queued_chunks,
    }
    service = {
        # Rounds submit the same folders again: with the result cache they would measure Redis
        # (the stand-in's caching cluster measures the cache itself).
        "result_cache": result_cache,
        **field_values(options.extra_env),
        "model_name": model.model_name,
        "data_roots": str(data_root.resolve()),
        **{key: value for key, value in chosen.items() if value is not None},
    }
    settings = ClusterSettings(
        model_repository=model.repository,
        gateway_port=0,
        web=False,  # the page is not measured
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


def _measure(run: Run, stack: ExitStack, main: ServedCluster, quantised: ServedCluster | None) -> None:
    main.raw_best = raw_sweep(run, main.raw, "fp32")
    if quantised:
        quantised.raw_best = raw_sweep(run, quantised.raw, "int8")
    best = triton_sweep(run, main)
    run.log("end to end: a warm-up job on each cluster")
    for model in (main, quantised):
        if model:
            end_to_end.run_job(model.client, run.data.small_job)
    encoded = baseline.read_images(files(run.data.sports))
    mixed = baseline.read_images(files(run.data.mixed))
    run.results.settings["datasets"] = {"224x224": dataset_sizes(encoded), "mixed": dataset_sizes(mixed)}
    port = stack.enter_context(baseline.single_image_service(main.served))
    for number in range(1, run.sizes.repeats + 1):
        run.log(f"round {number}/{run.sizes.repeats}")
        row = measure_round(run, main, quantised, best, encoded, port)
        row[f.DECODE_224] = decode_seconds_per_image(encoded[:DECODE_SAMPLE_IMAGES])
        row[f.DECODE_MIXED] = decode_seconds_per_image(mixed)
        run.results.rounds.append(row)
        run.log("  " + ", ".join(f"{key} {value:.3g}" for key, value in row.items()))
    throughput_figures(run, main, quantised, best)
    cli_once(run, main)
    map_cost(run, main)
    latency(run, main)
    fairness(run, main)
    camera(run, main)


# --- output ---------------------------------------------------------------------------


def _publish(
    options: BenchOptions, results: BenchResults, targets: list[TargetResult], seconds: float, console: Console
) -> None:
    console.print(figures_table(results))
    console.print(sweep_table(results))
    if results.cpu_per_image:
        console.print(cpu_table(results.cpu_per_image))
    if results.pipeline_cpu:
        console.print(cpu_table(results.pipeline_cpu, "stand-in model, path mode, 224x224 JPEGs"))
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
