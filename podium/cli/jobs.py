"""The job commands: submit, status, results, cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from errors import InvalidArgument
from podium.cli.failures import EXIT_JOB_NOT_COMPLETED
from podium.cli.heatmaps import images_folder, write_heatmaps
from podium.cli.options import (
    ApiKeyOpt,
    ExplainOpt,
    GatewayOpt,
    HeatmapsOpt,
    ImagesOpt,
    ModelOpt,
    connected,
    console,
    out,
)
from podium.cli.progress import follow_job, print_summary, progress_bar
from podium.client import PodiumClient
from podium.output import result_record, write_results
from podium.states import state_name
from proto import podium_pb2 as pb


def submit(
    folder: Annotated[Path | None, typer.Argument(help="Folder of images to upload (nested folders included)")] = None,
    server_path: Annotated[str | None, typer.Option(help="Instead of uploading: a folder the workers can read")] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the job ends, then fetch the results")] = False,
    output: Annotated[Path | None, typer.Option(help="With --wait: write results to FILE.jsonl or FILE.csv")] = None,
    top_k: Annotated[int, typer.Option(min=0, help="Classes per image (0: the gateway's default, 5)")] = 0,
    name: Annotated[str, typer.Option(help="A name for the job")] = "",
    model: ModelOpt = "",
    explain: ExplainOpt = False,
    heatmaps: HeatmapsOpt = None,
    images: ImagesOpt = None,
    show: Annotated[int, typer.Option(help="With --wait: print the first N results as a table (-1: all)")] = 20,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Submit a folder as a classification job; with --wait, follow it to the end."""
    if (folder is None) == (server_path is None):
        raise InvalidArgument("give a FOLDER to upload or --server-path PATH, not both")
    if output is not None and not wait:
        raise InvalidArgument("--output needs --wait", hint="or run `podium results JOB_ID --output FILE` later")
    if heatmaps is not None and not wait:
        raise InvalidArgument("--heatmaps needs --wait", hint="or run `podium results JOB_ID --heatmaps DIR` later")
    started = time.monotonic()
    spec = {"top_k": top_k, "name": name, "model": model, "explain": explain or heatmaps is not None}
    with connected(gateway, api_key) as client:
        job = _submit(client, folder, server_path, spec)
        out.print(f"job [bold]{job.id}[/] submitted: {job.total} files")
        if not wait:
            return
        job = follow_job(client, job, console)
        elapsed = time.monotonic() - started
        records = list(_fetch_results(client, job.id, output))
        print_summary(out, job, records, elapsed, output, show)
        if heatmaps is not None:
            write_heatmaps(client, job, records, heatmaps, images_folder(job, images or folder), console)
    if job.state != pb.JOB_STATE_COMPLETED:
        raise typer.Exit(EXIT_JOB_NOT_COMPLETED)


def _submit(client: PodiumClient, folder: Path | None, server_path: str | None, spec: dict) -> pb.Job:
    if server_path is not None:
        with console.status(f"listing {escape(server_path)} on the server"):
            return client.submit_path(server_path, **spec)
    assert folder is not None
    if not folder.is_dir():
        raise InvalidArgument(f"{folder} is not a folder")
    with progress_bar(console) as progress:
        task = progress.add_task("uploading", total=None, rate="")
        job = client.submit_folder(folder, on_file=lambda *_: progress.advance(task), **spec)
    return job


def _fetch_results(client: PodiumClient, job_id: str, output: Path | None) -> Iterator[dict]:
    records = (result_record(r) for r in client.results(job_id))
    if output is None:
        yield from records
    else:
        yield from write_results(output, records)


def status(
    job_id: Annotated[str, typer.Argument(help="The job id printed by `podium submit`")],
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Show a job's state and counters."""
    with connected(gateway, api_key) as client:
        job = client.get_job(job_id)
    error = f" error: {escape(job.error)}" if job.error else ""
    out.print(
        f"job {job.id} {state_name(job.state)}: {job.succeeded + job.failed}/{job.total} done "
        f"({job.succeeded} ok, {job.failed} failed)" + error
    )


def results(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    output: Annotated[Path | None, typer.Option(help="Write to FILE.jsonl or FILE.csv instead of stdout")] = None,
    follow: Annotated[bool, typer.Option(help="Wait for results until the job ends")] = False,
    heatmaps: HeatmapsOpt = None,
    images: ImagesOpt = None,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print a job's results as JSON lines (or write them to a file); --heatmaps draws an
    explained job's maps over its images."""
    seen = 0

    def counted(records: Iterator[dict]) -> Iterator[dict]:
        nonlocal seen
        for record in records:
            seen += 1
            yield record

    with connected(gateway, api_key) as client:
        job = client.get_job(job_id) if heatmaps is not None else None
        records = (result_record(r) for r in client.results(job_id, follow=follow))
        records = counted(write_results(output, records) if output is not None else _printed(records))
        if job is not None:
            write_heatmaps(client, job, records, heatmaps, images_folder(job, images), console)
        for _ in records:  # without --heatmaps, only the lines are wanted
            pass
    if output is not None:
        console.print(f"{seen} results written to {escape(str(output))}")


def _printed(records: Iterator[dict]) -> Iterator[dict]:
    for record in records:
        print(json.dumps(record, ensure_ascii=False))
        yield record


def cancel(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Cancel a job: images not yet processed are skipped."""
    with connected(gateway, api_key) as client:
        job = client.cancel(job_id)
    out.print(f"job {job.id} {state_name(job.state)}")


def delete(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Delete a job and all its data from the gateway (a running job is cancelled first)."""
    with connected(gateway, api_key) as client:
        client.delete(job_id)
    out.print(f"job {job_id} deleted", markup=False)
