"""The model commands: classes, classify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from podium.cli.heatmaps import draw_classified
from podium.cli.options import ApiKeyOpt, ExplainOpt, GatewayOpt, ModelOpt, connected, console, out
from podium.client.output import result_record


def classes(model: ModelOpt = "", gateway: GatewayOpt = None, api_key: ApiKeyOpt = None) -> None:
    """List the served model's classes (and say which model and version answers)."""
    with connected(gateway, api_key) as client:
        response = client.classes(model)
    console.print(
        f"{response.model_name} version {response.model_version} ({response.target}, {response.precision}): "
        f"{len(response.classes)} classes",
        markup=False,
        highlight=False,
    )
    for index, label in enumerate(response.classes):
        out.print(f"{index:4d}  {label}", highlight=False, markup=False)
    if response.untrained:
        console.print("[bold yellow]warning:[/] the served model is UNTRAINED: its answers are meaningless")


def classify(
    files: Annotated[list[Path], typer.Argument(help="Image files (a few; submit a job for folders)")],
    top_k: Annotated[int, typer.Option(min=0, help="Classes per image (0: the gateway's default)")] = 0,
    model: ModelOpt = "",
    explain: ExplainOpt = False,
    heatmaps: Annotated[
        Path | None,
        typer.Option("--heatmaps", help="Write each image's overlay PNG into DIR; implies --explain", metavar="DIR"),
    ] = None,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Classify a few images synchronously and print JSON lines."""
    with connected(gateway, api_key) as client:
        records = [
            result_record(result)
            for result in client.classify(files, top_k=top_k, model=model, explain=explain or heatmaps is not None)
        ]
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        if heatmaps is not None:
            draw_classified(client, model, files, records, heatmaps, console)
