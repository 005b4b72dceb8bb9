"""`podium bench`: the typer command. Light at import: the bench itself loads when it runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.options import DEFAULT_OUTPUT_DIR, BenchOptions
from podium.core.modelmeta import DEFAULT_MODEL_NAME

TABLE_WIDTH = 140


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("PODIUM_"):
            raise typer.BadParameter(f"{pair!r}: expected PODIUM_NAME=VALUE", param_hint="--env")
        env[key] = value
    return env


def bench(
    model_repository: Annotated[
        Path | None, typer.Option(help="Serve this model repository (default: export one into OUTPUT_DIR/work)")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Export this checkpoint (default: a seeded untrained model; speed is the same)")
    ] = None,
    model_name: Annotated[str, typer.Option(help="The model's name in Triton")] = DEFAULT_MODEL_NAME,
    quick: Annotated[bool, typer.Option(help="Small sizes and one repeat: a smoke test of a few minutes")] = False,
    repeats: Annotated[int | None, typer.Option(min=1, help="Repeats of each throughput figure (default 3)")] = None,
    latency_repeats: Annotated[int | None, typer.Option(min=1, help="Repeats of each latency (default 10)")] = None,
    output_dir: Annotated[Path, typer.Option(help="bench.json, bench.png, and work/ (reused)")] = DEFAULT_OUTPUT_DIR,
    int8: Annotated[bool, typer.Option(help="Also export and measure cpu-int8, when that target exists")] = True,
    scale: Annotated[
        bool,
        typer.Option(
            help="Also measure the result cache and the scale jobs on a stand-in model: 1,000,000 images in path "
            "mode, 100,000 uploaded (2,000 each with --quick)"
        ),
    ] = True,
    scale_images: Annotated[
        int | None,
        typer.Option(min=10, help="Images of the path-mode scale job (default 1,000,000; 2,000 with --quick)"),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Celery workers (default: the cluster's)")] = None,
    inflight: Annotated[int | None, typer.Option(min=1, help="PODIUM_INFLIGHT of each worker")] = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, help="PODIUM_CHUNK_SIZE: images per task")] = None,
    max_queued_chunks: Annotated[
        int | None, typer.Option(min=1, help="PODIUM_MAX_QUEUED_CHUNKS: chunks a job keeps queued")
    ] = None,
    triton_queue_delay_us: Annotated[
        int | None,
        typer.Option(min=0, help="Serve a copy of the model behind a Triton dynamic batcher that waits this long"),
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option(help="More settings for gateway and workers, PODIUM_NAME=VALUE (repeatable)")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 3 when a target fails")] = False,
) -> None:
    """Measure throughput, latency and fairness side by side; write bench.json and bench.png."""
    from bench.run import run_bench  # loads onnxruntime, the cluster, matplotlib

    logging.basicConfig(level=logging.WARNING)
    options = BenchOptions(
        output_dir=output_dir,
        model_repository=model_repository,
        checkpoint=checkpoint,
        model_name=model_name,
        quick=quick,
        repeats=repeats,
        latency_repeats=latency_repeats,
        int8=int8,
        scale=scale,
        scale_images=scale_images,
        workers=workers,
        inflight=inflight,
        chunk_size=chunk_size,
        max_queued_chunks=max_queued_chunks,
        triton_queue_delay_us=triton_queue_delay_us,
        extra_env=_env_pairs(env or []),
    )
    console = Console()
    if not console.is_terminal:  # piped into a file: wide enough for the tables to stay readable
        console = Console(width=TABLE_WIDTH)
    targets = run_bench(options, console)
    if strict and any(target.passed is False for target in targets):
        raise typer.Exit(3)
