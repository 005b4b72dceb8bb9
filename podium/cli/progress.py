"""What the CLI shows people: progress bars while a job runs, a summary when it ends."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from podium.client.api import PodiumClient
from podium.client.records import Job
from podium.client.states import is_terminal, state_name


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def follow_job(client: PodiumClient, job: Job, console: Console) -> Job:
    """Show a progress bar while the job runs; return its terminal state."""
    started = time.monotonic()
    progress = progress_bar(console)
    with progress:
        task = progress.add_task("classifying", total=job.total or None, rate="")
        for update in client.watch(job.id):
            job = update
            done = job.succeeded + job.failed
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(
                task,
                completed=done,
                total=job.total or None,
                rate=f"{rate:.1f} img/s",
                description=f"classifying ({job.failed} failed)" if job.failed else "classifying",
            )
            if is_terminal(job):
                break
    return job


def print_summary(
    out: Console, job: Job, records: list[dict], elapsed: float, output: str | Path | None, show: int
) -> None:
    """A table of the first ``show`` results (-1: all) and the job's counts and rate."""
    rows = records if show < 0 else records[:show]
    if rows:
        table = Table(title=f"results of job {job.id}", show_lines=False)
        for column in ("path", "top-1", "probability", "error"):
            table.add_column(column, overflow="fold")
        for record in rows:
            top = record["top_k"][0] if record["top_k"] else None
            # Text, not markup: a file may be called "holiday[/b].jpg".
            table.add_row(
                Text(record["path"]),
                Text(top["label"]) if top else "",
                f"{top['probability']:.3f}" if top else "",
                Text(record["error"] or ""),
            )
        out.print(table)
        if len(rows) < len(records):
            out.print(f"… and {len(records) - len(rows)} more")
    done = job.succeeded + job.failed
    out.print(
        f"job {job.id} {state_name(job.state)}: {job.succeeded} classified, {job.failed} failed, "
        f"{done} images in {elapsed:.1f} s = {done / max(elapsed, 1e-6):.1f} images/s"
    )
    if job.cached:
        out.print(f"{job.cached} of them duplicates of images classified before, answered from the result cache")
    if job.unchanged:
        out.print(
            f"{job.unchanged} more unchanged since the last run of {job.spec.incremental!r}: results carried over"
        )
    if job.error:
        out.print(f"error: {escape(job.error)}")
    if output is not None:
        out.print(f"results written to {escape(str(output))}")
