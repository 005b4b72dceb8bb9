"""Options every client command shares, and the client a command talks through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from podium.client.api import PodiumClient
from podium.client.settings import ClientSettings
from podium.core.settings import DEFAULT_GATEWAY, read_settings

# Progress, messages and errors go to stderr; results (tables, JSON lines) to stdout.
console = Console(stderr=True)
out = Console()

GatewayOpt = Annotated[
    str | None, typer.Option("--gateway", help=f"Gateway host:port (default: $PODIUM_GATEWAY or {DEFAULT_GATEWAY})")
]
ApiKeyOpt = Annotated[str | None, typer.Option("--api-key", help="API key (default: $PODIUM_API_KEY)")]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="NAME or NAME:VERSION of the model in Triton (default: the gateway's, newest version)"
    ),
]

ExplainOpt = Annotated[
    bool,
    typer.Option("--explain", help="Add each image's class activation map (where the model found its top-1 class)"),
]
HeatmapsOpt = Annotated[
    Path | None,
    typer.Option(
        "--heatmaps",
        help="Write one overlay PNG per classified image into DIR (same sub-folders); implies --explain",
        metavar="DIR",
    ),
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="With --heatmaps: the folder the job's images came from (default: the folder it was submitted from)",
        metavar="DIR",
    ),
]


@contextmanager
def connected(gateway: str | None, api_key: str | None) -> Iterator[PodiumClient]:
    """A client of the gateway for one command, closed when the command ends."""
    settings = read_settings(ClientSettings)
    client = settings.address(gateway).connect(api_key if api_key is not None else settings.api_key)
    try:
        yield client
    finally:
        client.close()
