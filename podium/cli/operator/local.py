"""Commands that run Podium on this machine: up, demo."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from podium.cli.failures import reported
from podium.cli.options import console, out
from podium.core.settings import DEFAULT_GATEWAY, DEFAULT_GATEWAY_PORT, DEFAULT_WEB_PORT, read_settings

DEFAULT_RUN_DIR = Path(".podium/up")


def register(app: typer.Typer) -> None:
    app.command()(reported(up))
    app.command()(reported(web))
    app.command()(reported(demo))


def up(
    model_repository: Annotated[
        Path | None,
        typer.Option(help="Triton model repository (default: $PODIUM_UP_MODEL_REPOSITORY or model_repository)"),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Celery worker processes (default: 2)")] = None,
    gateway_port: Annotated[
        int | None, typer.Option(help=f"Gateway gRPC port, 0: a free one (default: {DEFAULT_GATEWAY_PORT})")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="The model's name in Triton (default: $PODIUM_MODEL_NAME or resnet50_sports)")
    ] = None,
    api_keys: Annotated[
        str | None, typer.Option(help="Comma-separated API keys the gateway accepts (default: $PODIUM_API_KEYS)")
    ] = None,
    data_roots: Annotated[
        str | None,
        typer.Option(help="Comma-separated folders path-mode jobs may read (default: $PODIUM_DATA_ROOTS)"),
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Logs and Redis data (default: .podium/up)")] = None,
    web_port: Annotated[
        int | None,
        typer.Option(help=f"The web page's port, 0: a free one (default: $PODIUM_UP_WEB_PORT or {DEFAULT_WEB_PORT})"),
    ] = None,
    serve_web: Annotated[
        bool | None, typer.Option("--web/--no-web", help="Serve the web page beside the gateway (default: yes)")
    ] = None,
) -> None:
    """Start Redis, Triton, workers and the gateway here; stop them all on Ctrl-C or SIGTERM.

    The gateway and workers read every PODIUM_* variable of this environment (see
    docs/deploy.md), the cluster its PODIUM_UP_* ones; a flag given overrides its variable."""
    from podium.cluster import ClusterSettings, LocalCluster

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    given = {
        "model_repository": model_repository,
        "workers": workers,
        "gateway_port": gateway_port,
        "run_dir": run_dir,
        "web_port": web_port,
        "web": serve_web,
    }
    service = {"model_name": model_name, "api_keys": api_keys, "data_roots": data_roots}
    settings = read_settings(
        ClusterSettings,
        **{name: value for name, value in given.items() if value is not None},
        service={name: value for name, value in service.items() if value is not None},
    )
    if settings.run_dir is None:
        settings = settings.model_copy(update={"run_dir": DEFAULT_RUN_DIR})
    cluster = LocalCluster(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with console.status("starting Redis, Triton, workers, the gateway and the web page"):
        cluster.start()
    address = cluster.gateway_address
    out.print(f"Podium is up: gateway at [bold]{address}[/]  (logs in {escape(str(cluster.run_dir))})")
    if not cluster.gateway_settings.api_key_list():
        out.print("  no API keys: any local client may call the gateway (set PODIUM_API_KEYS or --api-keys)")
    if cluster.web_url:
        out.print(f"  web: {cluster.web_url}", markup=False, highlight=False)
    for name, url in cluster.metrics_urls.items():
        out.print(f"  metrics  {name:<9} {url}", markup=False, highlight=False)
    out.print(f"  podium submit DIR --gateway {address} --wait --output results.jsonl", markup=False)
    out.print("Press Ctrl-C to stop.", highlight=False)
    try:
        cluster.supervise(stop.is_set)
    finally:
        console.print("stopping…")
        cluster.stop()
        console.print("stopped")


def web(
    gateway: Annotated[
        str | None, typer.Option(help=f"The gateway's host:port (default: $PODIUM_WEB_GATEWAY or {DEFAULT_GATEWAY})")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default: $PODIUM_WEB_HOST or 127.0.0.1; another needs API keys)"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"HTTP port (default: $PODIUM_WEB_PORT, else {DEFAULT_WEB_PORT}, else a free one if it is taken)"
        ),
    ] = None,
    reports: Annotated[
        Path | None,
        typer.Option(
            help="Folder of `podium evaluate --report` outputs shown on /evaluations ($PODIUM_WEB_REPORTS_DIR)"
        ),
    ] = None,
) -> None:
    """Serve the web page: drop a folder in, watch jobs run, browse and download their results.

    It is a client of the gateway over gRPC and nothing else. When the gateway has API keys,
    each visitor logs in with one; on an address other than loopback the page refuses to serve
    a gateway without keys (PODIUM_WEB_ALLOW_UNAUTHENTICATED=true if a proxy authenticates).
    Every PODIUM_WEB_* variable is read (see docs/web.md); a flag overrides its variable."""
    from podium.cluster.processes import free_port
    from podium.web.server import serve
    from podium.web.settings import WebSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    given = {"gateway": gateway, "host": host, "port": port, "reports_dir": reports}
    settings = read_settings(WebSettings, **{name: value for name, value in given.items() if value is not None})
    if "port" not in settings.model_fields_set and not port_free(settings.host, settings.port):
        # The default port is taken (e.g. by `podium up`'s own page): another, said below.
        # A port asked for (--port, PODIUM_WEB_PORT) is kept, and a taken one is an error.
        console.print(f"port {settings.port} is in use; serving on a free one (--port chooses)")
        settings = settings.model_copy(update={"port": free_port()})
    out.print(f"web: http://{settings.host}:{settings.port}  (gateway {settings.gateway}; Ctrl-C stops)", markup=False)
    serve(settings)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def demo(
    dir: Annotated[Path, typer.Option("--dir", help="Where the model, photos, logs and results go")] = Path(
        ".podium/demo"
    ),
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A trained checkpoint to serve (default: the demo trains a MobileNetV3-Small on crops of the bundled "
            "photographs, ~1.5 minutes on 2 cores, and evaluates it on held-out crops)"
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 2,
) -> None:
    """The whole path on this machine: train (or take) a model, export, start everything, evaluate, classify real photographs, stop."""
    from podium.cli.operator.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    run_demo(dir, checkpoint, workers, console)
