"""The `podium` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from podium.client import PodiumClient, PodiumClientError
from podium.output import result_record, write_results
from podium.reporting import follow_job, print_summary, progress_bar, state_name
from podium.settings import ClientSettings
from proto import podium_pb2 as pb

app = typer.Typer(
    help="Podium: classify folders of images with a model served by NVIDIA Triton.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(stderr=True)
out = Console()


GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help="Gateway host:port (default: $PODIUM_GATEWAY or 127.0.0.1:50051)")
]
ApiKeyOpt = Annotated[str | None, typer.Option("--api-key", help="API key (default: $PODIUM_API_KEY)")]


@contextmanager
def _connected(gateway: str | None, api_key: str | None) -> Iterator[PodiumClient]:
    """A client for the command; a failed call ends the command with its readable message."""
    settings = ClientSettings()
    client = PodiumClient(
        gateway or settings.gateway,
        api_key if api_key is not None else settings.api_key,
        tls=settings.tls,
        tls_ca_file=settings.tls_ca_file,
    )
    try:
        yield client
    except PodiumClientError as exc:
        _fail(str(exc))
    finally:
        client.close()


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# --- export, build-engine, models (the export package's commands) ---------------------

TARGET_HELP = (
    "cpu: ONNX FP32 on Triton's Python backend (embedded default); cpu-int8: static INT8 ONNX on the same path "
    "(needs --calibration); gpu: TensorRT FP16 plan (pending until `podium build-engine` on the GPU); "
    "cpu-ort / gpu-ort: ONNX Runtime backend of NGC Triton images (gpu-ort with TensorRT acceleration)"
)


@app.command()
def export(
    checkpoint: Annotated[Path | None, typer.Option(help="PyTorch state_dict of a torchvision ResNet50")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Class names, one per line (default: the 100 sports classes)")
    ] = None,
    labels_from: Annotated[
        Path | None, typer.Option(help="Take the class names from a dataset folder, as ImageFolder does")
    ] = None,
    target: Annotated[str, typer.Option(help=TARGET_HELP)] = "cpu",
    model_repository: Annotated[Path, typer.Option(help="Triton model repository to write into")] = Path(
        "model_repository"
    ),
    model_name: Annotated[str, typer.Option(help="The model's name in Triton")] = "resnet50_sports",
    untrained: Annotated[bool, typer.Option(help="No checkpoint: a seeded untrained model, labelled as such")] = False,
    verify_images: Annotated[
        Path | None, typer.Option(help="Folder of images to check ONNX against PyTorch on")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="cpu-int8: folder of photographs to calibrate on (every 5th held out)")
    ] = None,
    force: Annotated[bool, typer.Option(help="cpu-int8: install even below 98% top-1 agreement")] = False,
    max_batch_size: Annotated[
        int | None, typer.Option(min=1, help="Triton max_batch_size (default: 32 on CPU, the engine profile's on GPU)")
    ] = None,
) -> None:
    """Export a trained checkpoint into a Triton model repository (a new version each time)."""
    if (checkpoint is None) == (not untrained):
        _fail("give either --checkpoint CKPT or --untrained")
    from export import ExportError, export_model

    with console.status("exporting") as status:
        try:
            result = export_model(
                checkpoint=checkpoint,
                labels=labels,
                labels_from=labels_from,
                target=target,
                model_repository=model_repository,
                model_name=model_name,
                untrained=untrained,
                verify_images=verify_images,
                calibration=calibration,
                force=force,
                max_batch_size=max_batch_size,
                progress=lambda message: status.update(message),
            )
        except ExportError as exc:
            _fail(str(exc))
    meta = result.metadata
    fidelity = result.fidelity
    console.print(
        f"[green]exported[/] {meta.model_name} version {result.version} ({meta.target}, {len(meta.classes)} classes) "
        f"to {result.model_dir}"
    )
    if fidelity:
        console.print(
            f"{fidelity.get('model', 'ONNX')} vs {fidelity.get('reference', 'PyTorch')} on "
            f"{len(fidelity.get('images', []))} images: top-1 agreement "
            f"{fidelity.get('top1_agreement', 0):.1%}, max |Δp| {fidelity.get('max_abs_diff', 0):.2e}"
        )
    if "int8_speedup" in fidelity:
        console.print(f"INT8 runs {fidelity['int8_speedup']:.2f}x the FP32 model's onnxruntime throughput here")
    if fidelity.get("forced"):
        console.print("[bold yellow]warning:[/] installed with --force below the INT8 agreement threshold")
    if result.pending:
        console.print(
            "[bold yellow]not servable yet:[/] the version waits for its TensorRT engine; run `podium build-engine "
            f"--model-repository {model_repository}` on the serving GPU before starting Triton"
        )
    if meta.untrained:
        console.print("[bold yellow]warning:[/] UNTRAINED model: its answers are meaningless (use --checkpoint)")


BUILD_ENGINE_HELP = (
    "Build the TensorRT FP16 engine of every GPU model version, on this GPU, and install it.\n\n"
    "Run it on the serving GPU with the TensorRT of the Triton image's NGC release (the compose engine-builder "
    "service and the k8s init container do), before Triton starts: a plan only runs on the GPU model and TensorRT "
    "version that built it. Without a CUDA GPU and TensorRT it stops at once and says so.\n\n"
    "For each version exported with --target gpu (and each installed one built for another GPU or TensorRT): "
    "TensorRT's ONNX parser reads model.onnx (explicit batch); one optimisation profile for 'images' with batch "
    "min 1 / opt / max = the config's max_batch_size; FP16; a workspace memory limit; a timing cache reused "
    "across builds.\n\n"
    "The engine is then run against onnxruntime FP32 on the check images (those the export verified on, or "
    "--images DIR); top-1 agreement and max |Δp| go into fidelity.json, and the engine is installed as model.plan "
    "only at or above the threshold (default 99.5%). Only then does the pending version become visible to "
    "Triton.\n\n"
    "Engines are cached under (ONNX sha256, GPU name and compute capability, TensorRT version, build recipe).\n\n"
    "Settings: PODIUM_ENGINE_MAX_BATCH_SIZE (64, read by the export), PODIUM_ENGINE_OPT_BATCH_SIZE (32), "
    "PODIUM_ENGINE_WORKSPACE_MIB (4096), PODIUM_ENGINE_MIN_TOP1_AGREEMENT (0.995), PODIUM_ENGINE_CACHE_DIR "
    "(~/.cache/podium/engines)."
)


@app.command("build-engine", help=BUILD_ENGINE_HELP)
def build_engine(
    model_repository: Annotated[Path, typer.Option(help="Triton model repository holding GPU exports")] = Path(
        "model_repository"
    ),
    model_name: Annotated[str | None, typer.Option(help="Only this model (default: every model)")] = None,
    images: Annotated[
        Path | None,
        typer.Option(help="Check the engine on these photographs (default: the images the export verified on)"),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Engine and timing cache (default: $PODIUM_ENGINE_CACHE_DIR or ~/.cache)")
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Top-1 agreement with onnxruntime FP32 required (default: build.json's, 0.995)"
        ),
    ] = None,
) -> None:
    """Build, check and install the TensorRT engines of GPU model versions (see --help)."""
    from export import ExportError
    from export.engine_build import build_engines
    from export.engine_recipe import EngineSettings

    try:
        outcomes = build_engines(
            model_repository,
            cache_dir=cache_dir or EngineSettings().cache_dir,
            model_name=model_name,
            images=images,
            min_top1_agreement=min_agreement,
            progress=lambda message: console.print(message, highlight=False),
        )
    except ExportError as exc:
        _fail(str(exc))
    if not outcomes:
        console.print(f"no GPU model versions in {model_repository}: export one with `podium export --target gpu`")
    for outcome in outcomes:
        figures = outcome.fidelity.get("engine", outcome.fidelity)
        agreement = figures.get("top1_agreement")
        shown = f", top-1 agreement {agreement:.1%}" if agreement is not None else ""
        out.print(f"{outcome.model} version {outcome.version}: {outcome.action}{shown}", highlight=False)


@app.command()
def models(
    model_repository: Annotated[Path, typer.Option(help="Triton model repository")] = Path("model_repository"),
) -> None:
    """List the models in a repository: versions, target, classes, checkpoint and fidelity."""
    from rich.table import Table

    from export import ExportError
    from export.model_listing import list_models

    try:
        summaries = list_models(model_repository)
    except ExportError as exc:
        _fail(str(exc))
    if not summaries:
        console.print(f"no models in {model_repository}: export one with `podium export`")
        return
    table = Table(title=f"models in {model_repository}")
    for column in ("model", "version", "target", "classes", "checkpoint", "top-1 agr.", "max |Δp|", "status"):
        table.add_column(column)
    for s in summaries:
        checkpoint = "[yellow]UNTRAINED[/]" if s.untrained else (s.checkpoint_sha256 or "?")[:12]
        version = f"{s.version} (served)" if s.served else str(s.version)
        agreement = f"{s.top1_agreement:.1%}" if s.top1_agreement is not None else "-"
        diff = f"{s.max_abs_diff:.1e}" if s.max_abs_diff is not None else "-"
        target = f"{s.target} ({s.precision})"
        table.add_row(s.model, version, target, str(s.classes), checkpoint, agreement, diff, s.status)
    out.print(table)


# --- up -------------------------------------------------------------------------------


@app.command()
def up(
    model_repository: Annotated[Path, typer.Option(help="Triton model repository")] = Path("model_repository"),
    workers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 2,
    gateway_port: Annotated[int, typer.Option(help="Gateway gRPC port (0: a free one)")] = 50051,
    model_name: Annotated[str, typer.Option(help="The model's name in Triton")] = "resnet50_sports",
    data_roots: Annotated[str, typer.Option(help="Comma-separated folders path-mode jobs may read")] = "",
    run_dir: Annotated[Path, typer.Option(help="Logs and Redis data")] = Path(".podium/up"),
) -> None:
    """Start Redis, Triton, workers and the gateway here; stop them all on Ctrl-C or SIGTERM."""
    from cluster import ClusterSettings, LocalCluster, ProcessFailed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=workers,
        gateway_port=gateway_port,
        model_name=model_name,
        data_roots=data_roots,
        run_dir=run_dir,
    )
    cluster = LocalCluster(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with console.status("starting Redis, Triton, workers and the gateway"):
            cluster.start()
    except ProcessFailed as exc:
        _fail(str(exc))
    out.print(f"Podium is up: gateway at [bold]{cluster.gateway_address}[/]  (logs in {cluster.run_dir})")
    out.print(f"  podium submit DIR --gateway {cluster.gateway_address} --wait --output results.jsonl")
    out.print("Press Ctrl-C to stop.", highlight=False)
    try:
        cluster.supervise(stop.is_set)
    finally:
        console.print("stopping…")
        cluster.stop()
        console.print("stopped")


# --- jobs -----------------------------------------------------------------------------


@app.command()
def submit(
    folder: Annotated[Path | None, typer.Argument(help="Folder of images to upload (nested folders included)")] = None,
    server_path: Annotated[str | None, typer.Option(help="Instead of uploading: a folder the workers can read")] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the job ends, then fetch the results")] = False,
    output: Annotated[Path | None, typer.Option(help="With --wait: write results to FILE.jsonl or FILE.csv")] = None,
    top_k: Annotated[int, typer.Option(min=0, help="Classes per image (0: the gateway's default, 5)")] = 0,
    name: Annotated[str, typer.Option(help="A name for the job")] = "",
    show: Annotated[int, typer.Option(help="With --wait: print the first N results as a table (-1: all)")] = 20,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Submit a folder as a classification job; with --wait, follow it to the end."""
    if (folder is None) == (server_path is None):
        _fail("give a FOLDER to upload or --server-path PATH, not both")
    if output is not None and not wait:
        _fail("--output needs --wait (or run `podium results JOB_ID --output FILE` later)")
    started = time.monotonic()
    with _connected(gateway, api_key) as client:
        job = _submit(client, folder, server_path, top_k, name)
        out.print(f"job [bold]{job.id}[/] submitted: {job.total} files")
        if not wait:
            return
        job = follow_job(client, job, console)
        elapsed = time.monotonic() - started
        records = list(_fetch_results(client, job.id, output))
    print_summary(out, job, records, elapsed, output, show)
    if job.state != pb.JOB_STATE_COMPLETED:
        raise typer.Exit(2)


def _submit(client: PodiumClient, folder: Path | None, server_path: str | None, top_k: int, name: str) -> pb.Job:
    if server_path is not None:
        with console.status(f"listing {server_path} on the server"):
            return client.submit_path(server_path, top_k=top_k, name=name)
    assert folder is not None
    if not folder.is_dir():
        _fail(f"{folder} is not a folder")
    with progress_bar(console) as progress:
        task = progress.add_task("uploading", total=None, rate="")
        job = client.submit_folder(folder, top_k=top_k, name=name, on_file=lambda *_: progress.advance(task))
    return job


def _fetch_results(client: PodiumClient, job_id: str, output: Path | None):
    records = (result_record(r) for r in client.results(job_id))
    if output is None:
        yield from records
    else:
        yield from write_results(output, records)


@app.command()
def status(
    job_id: Annotated[str, typer.Argument(help="The job id printed by `podium submit`")],
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Show a job's state and counters."""
    with _connected(gateway, api_key) as client:
        job = client.get_job(job_id)
    out.print(
        f"job {job.id} {state_name(job.state)}: {job.succeeded + job.failed}/{job.total} done "
        f"({job.succeeded} ok, {job.failed} failed)" + (f" error: {job.error}" if job.error else "")
    )


@app.command()
def results(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    output: Annotated[Path | None, typer.Option(help="Write to FILE.jsonl or FILE.csv instead of stdout")] = None,
    follow: Annotated[bool, typer.Option(help="Wait for results until the job ends")] = False,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print a job's results as JSON lines (or write them to a file)."""

    with _connected(gateway, api_key) as client:
        records = (result_record(r) for r in client.results(job_id, follow=follow))
        if output is not None:
            count = sum(1 for _ in write_results(output, records))
            console.print(f"{count} results written to {output}")
        else:
            for record in records:
                print(json.dumps(record, ensure_ascii=False))


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Cancel a job: images not yet processed are skipped."""
    with _connected(gateway, api_key) as client:
        job = client.cancel(job_id)
    out.print(f"job {job.id} {state_name(job.state)}")


@app.command()
def classes(gateway: GatewayOpt = None, api_key: ApiKeyOpt = None) -> None:
    """List the served model's classes."""
    with _connected(gateway, api_key) as client:
        response = client.classes()
    for index, label in enumerate(response.classes):
        out.print(f"{index:4d}  {label}", highlight=False)
    if response.untrained:
        console.print("[bold yellow]warning:[/] the served model is UNTRAINED: its answers are meaningless")


@app.command()
def classify(
    files: Annotated[list[Path], typer.Argument(help="Image files (a few; submit a job for folders)")],
    top_k: Annotated[int, typer.Option(min=0, help="Classes per image (0: the gateway's default)")] = 0,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Classify a few images synchronously and print JSON lines."""

    with _connected(gateway, api_key) as client:
        for result in client.classify(files, top_k=top_k):
            print(json.dumps(result_record(result), ensure_ascii=False))


@app.command()
def demo(
    dir: Annotated[Path, typer.Option("--dir", help="Where the model, photos, logs and results go")] = Path(
        ".podium/demo"
    ),
    checkpoint: Annotated[Path | None, typer.Option(help="A trained checkpoint (default: untrained model)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 2,
) -> None:
    """The whole path on this machine: export, start everything, classify real photographs, stop."""
    from cluster import ProcessFailed
    from podium.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    try:
        run_demo(dir, checkpoint, workers, console)
    except ProcessFailed as exc:
        _fail(str(exc))


# --- bench (the command and everything it runs live in the bench package) -------------
from bench.command import bench as _bench

app.command("bench")(_bench)


def main() -> None:
    app()
