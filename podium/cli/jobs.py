"""The job commands: submit, status, jobs, results, cancel, delete."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from podium.cli.destinations import local_output
from podium.cli.failures import EXIT_JOB_NOT_COMPLETED
from podium.cli.heatmaps import images_folder, write_heatmaps
from podium.cli.job_flags import JOB_OPTIONS, with_job_options
from podium.cli.options import (
    ApiKeyOpt,
    GatewayOpt,
    HeatmapsOpt,
    ImagesOpt,
    connected,
    console,
    out,
)
from podium.cli.parquet import bulk_batches, write_batches, write_parquet
from podium.cli.progress import follow_job, print_summary, progress_bar
from podium.client.api import PodiumClient
from podium.client.bulk import batch_lines, batch_records
from podium.client.manifest import Manifest, read_manifest
from podium.client.output import (
    CSV_COLUMNS,
    ResultFormat,
    csv_row,
    job_record,
    result_record,
    with_meta,
    with_unsent,
    write_lines,
    write_results,
)
from podium.client.records import Job
from podium.client.states import state_name
from podium.core.errors import InvalidArgument
from podium.core.jobs import FailureLimit, JobOptions, is_s3_url
from podium.core.proto import podium_pb2 as pb


@with_job_options
def submit(
    folder: Annotated[
        str | None,
        typer.Argument(
            help="Folder of images to upload (nested folders included), or s3://BUCKET/PREFIX for the workers to read",
            show_default=False,
        ),
    ] = None,
    server_path: Annotated[str | None, typer.Option(help="Instead of uploading: a folder the workers can read")] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Instead of a folder: a file of image paths or s3:// URLs, one per line (or a CSV with 'path')"
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the job ends, then fetch the results")] = False,
    output: Annotated[
        str | None,
        typer.Option(help="With --wait: write results to FILE.jsonl, FILE.csv or s3://BUCKET/KEY.jsonl"),
    ] = None,
    options: JobOptions = JOB_OPTIONS,  # the job flags stand here (with_job_options)
    heatmaps: HeatmapsOpt = None,
    images: ImagesOpt = None,
    show: Annotated[int, typer.Option(help="With --wait: print the first N results as a table (-1: all)")] = 20,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Submit a folder, an s3:// prefix or a manifest as a job; with --wait, follow it to the end."""
    if sum(given is not None for given in (folder, server_path, manifest)) != 1:
        raise InvalidArgument("give one of: a FOLDER (or s3://BUCKET/PREFIX), --server-path PATH, --manifest FILE")
    if options.job_key and (folder is None or is_s3_url(folder)):
        raise InvalidArgument("--job-key resumes an upload: give a FOLDER to upload")
    if options.incremental and (folder is not None and not is_s3_url(folder)):
        raise InvalidArgument(
            "--incremental compares a listing the gateway reads: an upload has none",
            hint="give --server-path PATH (inside the gateway's PODIUM_DATA_ROOTS), s3://BUCKET/PREFIX or --manifest",
        )
    if output is not None and not wait:
        raise InvalidArgument("--output needs --wait", hint="or run `podium results JOB_ID --output FILE` later")
    if heatmaps is not None and not wait:
        raise InvalidArgument("--heatmaps needs --wait", hint="or run `podium results JOB_ID --heatmaps DIR` later")
    started = time.monotonic()
    FailureLimit.parse(options.max_failed)  # a typo fails here, before any upload
    if heatmaps is not None:
        options = dataclasses.replace(options, explain=True)
    listed = read_manifest(manifest) if manifest is not None else None
    with connected(gateway, api_key) as client:
        job = _submit(client, folder, server_path, listed, options)
        out.print(f"job [bold]{job.id}[/] submitted: {job.total} files")
        if not wait:
            return
        job = follow_job(client, job, console)
        elapsed = time.monotonic() - started
        with local_output(output) as path:
            uploaded = Path(folder) if folder is not None and not is_s3_url(folder) and not server_path else None
            records = list(_fetch_results(client, job, path, listed.meta if listed else [], uploaded))
        print_summary(out, job, records, elapsed, output, show)
        if heatmaps is not None:
            local = Path(folder) if folder is not None and not is_s3_url(folder) else None
            write_heatmaps(client, job, records, heatmaps, images_folder(job, images or local), console)
    if job.state != pb.JOB_STATE_COMPLETED:
        raise typer.Exit(EXIT_JOB_NOT_COMPLETED)


def _submit(
    client: PodiumClient, folder: str | None, server_path: str | None, listed: Manifest | None, options: JobOptions
) -> Job:
    if listed is not None:
        with console.status(f"sending a manifest of {len(listed.paths):,} images"):
            return client.submit_manifest(listed.paths, options)
    remote = server_path if server_path is not None else folder if folder and is_s3_url(folder) else None
    if remote is not None:
        with console.status(f"listing {escape(remote)} on the server"):
            return client.submit_path(remote, options)
    assert folder is not None
    if not Path(folder).is_dir():
        raise InvalidArgument(f"{folder} is not a folder")
    with progress_bar(console) as progress:
        task = progress.add_task("uploading", total=None, rate="")
        job = client.submit_folder(folder, on_file=lambda *_: progress.advance(task), options=options)
    return job


def _fetch_results(
    client: PodiumClient,
    job: Job,
    output: Path | None,
    meta: list[dict[str, str]] = (),
    uploaded: Path | None = None,
) -> Iterator[dict]:
    records = (with_meta(result_record(r), r.index, meta) for r in client.results(job.id))
    if uploaded is not None and job.state != pb.JOB_STATE_COMPLETED:
        records = with_unsent(records, uploaded, job)
    if output is None:
        yield from records
    else:
        yield from write_results(output, records)


def status(
    job_id: Annotated[str, typer.Argument(help="The job id printed by `podium submit`")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as one JSON object")] = False,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Show a job's state and counters."""
    with connected(gateway, api_key) as client:
        job = client.get_job(job_id)
    if as_json:
        print(json.dumps(job_record(job), ensure_ascii=False))
        return
    error = f" error: {escape(job.error)}" if job.error else ""
    cached = f", {job.cached} from the cache" if job.cached else ""
    unchanged = f"; {job.unchanged} unchanged, carried over" if job.unchanged else ""
    out.print(
        f"job {job.id} {state_name(job.state)}: {job.succeeded + job.failed}/{job.total} done "
        f"({job.succeeded} ok{cached}, {job.failed} failed{unchanged})" + error
    )


_STATES = {state_name(value): value for value in pb.JobState.values() if value != pb.JOB_STATE_UNSPECIFIED}


def jobs(
    state: Annotated[str, typer.Option(help=f"Only jobs in this state: {', '.join(_STATES)}", metavar="STATE")] = "",
    name: Annotated[str, typer.Option(help="Only jobs whose name contains this text")] = "",
    limit: Annotated[int, typer.Option(min=0, help="Show at most N jobs, newest first (0: all)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of jobs instead of a table")] = False,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List your jobs, newest first (an admin key: everyone's)."""
    if state and state not in _STATES:
        raise InvalidArgument(f"unknown state {state!r}", hint=f"one of: {', '.join(_STATES)}")
    with connected(gateway, api_key) as client:
        listed = client.list_jobs(state=_STATES.get(state, pb.JOB_STATE_UNSPECIFIED), name=name)
        records = [job_record(job) for job in itertools.islice(listed, limit or None)]
    if as_json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return
    if not records:
        out.print("no jobs" + (" match" if state or name else ""))
        return
    table = Table(show_lines=False)
    for column in ("id", "name", "state", "done", "failed", "cached", "created"):
        table.add_column(column, overflow="fold")
    for record in records:
        done = record["succeeded"] + record["failed"]
        table.add_row(
            record["id"],
            Text(record["name"]),
            record["state"],
            f"{done}/{record['total']}",
            str(record["failed"]),
            str(record["cached"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["created_at"])),
        )
    out.print(table)


def results(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    output: Annotated[
        str | None,
        typer.Option(help="Write to FILE.jsonl, FILE.csv, FILE.parquet or s3://BUCKET/KEY.… instead of stdout"),
    ] = None,
    output_format: Annotated[
        ResultFormat | None,
        typer.Option(
            "--format",
            help="jsonl, csv or parquet (the results sink's columns; needs --output). Default: --output's "
            "suffix, else jsonl",
        ),
    ] = None,
    follow: Annotated[bool, typer.Option(help="Wait for results until the job ends")] = False,
    heatmaps: HeatmapsOpt = None,
    images: ImagesOpt = None,
    gateway: GatewayOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Print a job's results as JSON lines or CSV (or write them to a file, also as Parquet);
    --heatmaps draws an explained job's maps over its images."""
    fmt = ResultFormat.of(output, output_format)
    if fmt is ResultFormat.PARQUET and output is None:
        raise InvalidArgument("Parquet is written to a file", hint="add --output FILE.parquet (or s3://BUCKET/KEY)")
    seen = 0

    def counted(records: Iterator[dict]) -> Iterator[dict]:
        nonlocal seen
        for record in records:
            seen += 1
            yield record

    with connected(gateway, api_key) as client, local_output(output) as path:
        bulk = bulk_batches(client, job_id) if not follow and heatmaps is None else None
        if bulk is not None:  # a completed job's result files, in bulk
            seen = _bulk_written(bulk, path, fmt)
        else:
            job = client.get_job(job_id) if heatmaps is not None or fmt is ResultFormat.PARQUET else None
            results = client.results(job_id, follow=follow)
            if fmt is ResultFormat.PARQUET:
                records = counted(result_record(r) for r in write_parquet(path, results, job.spec.model.rstrip(":")))
            else:
                records = (result_record(r) for r in results)
                records = counted(write_results(path, records, fmt) if path is not None else _printed(records, fmt))
            if heatmaps is not None:
                write_heatmaps(client, job, records, heatmaps, images_folder(job, images), console)
            for _ in records:  # without --heatmaps, only the lines are wanted
                pass
    if output is not None:
        console.print(f"{seen} results written to {escape(str(output))}")


def _bulk_written(batches: Iterator, path: Path | None, fmt: ResultFormat) -> int:
    """A completed job's Arrow batches written as ``fmt`` to ``path`` (stdout if None); how many rows."""
    if fmt is ResultFormat.PARQUET:
        return write_batches(path, batches)
    if fmt is ResultFormat.JSONL:
        return write_lines(path, (line for batch in batches for line in batch_lines(batch)))
    records = (record for batch in batches for record in batch_records(batch))
    return sum(1 for _ in (write_results(path, records, fmt) if path is not None else _printed(records, fmt)))


def _printed(records: Iterator[dict], fmt: ResultFormat) -> Iterator[dict]:
    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS) if fmt is ResultFormat.CSV else None
    if writer is not None:
        writer.writeheader()
    for record in records:
        if writer is not None:
            writer.writerow(csv_row(record))
        else:
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
