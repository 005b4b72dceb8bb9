"""End to end through the gateway: jobs submitted as a user submits them, timed to completion.

A job's time runs from the start of its upload to the moment the client sees it completed
(``watch``), which is what a user waits for. The gateway's own ``finished_at`` is recorded
beside it, so that time spent noticing the end (the watch stream's polling) can be told
apart from time spent classifying.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from podium.client.api import PodiumClient
from podium.client.records import Job
from podium.core.errors import Internal
from podium.core.jobs import walk_files
from podium.core.proto import podium_pb2 as pb

TERMINAL = {pb.JOB_STATE_COMPLETED, pb.JOB_STATE_CANCELLED, pb.JOB_STATE_FAILED}
POLL_S = 0.05
BIG_JOB_START_TIMEOUT_S = 120.0
CLI_TIMEOUT_S = 1800.0


class JobFailed(Internal):
    """A benchmark job did not complete: its figure would be meaningless."""


@dataclass(frozen=True)
class JobRun:
    job_id: str
    images: int
    seconds: float  # upload start -> the client sees the job completed
    server_seconds: float  # upload start -> the gateway's finished_at (same clock, this machine)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


@dataclass(frozen=True)
class FairnessRun:
    small: JobRun  # the small job, submitted while the big one runs
    big_done_before: int  # the big job's finished images when the small one was submitted
    big_done_after: int  # ... and when the small one completed
    big_total: int


def count_images(folder: Path) -> int:
    return sum(1 for _ in walk_files(folder))


def run_job(client: PodiumClient, folder: Path, explain: bool = False, model: str = "") -> JobRun:
    """Upload ``folder`` as a job (explained: with maps; ``model``: another than the default)
    and follow it to its end."""
    wall_started, started = time.time(), time.perf_counter()
    job = client.submit_folder(folder, name=f"bench {folder.name}", explain=explain, model=model)
    job = _follow(client, job)
    seconds = time.perf_counter() - started
    _check_completed(job, folder)
    return JobRun(job.id, images=int(job.total), seconds=seconds, server_seconds=job.finished_at - wall_started)


def _follow(client: PodiumClient, job: Job) -> Job:
    for update in client.watch(job.id):
        job = update
        if job.state in TERMINAL:
            break
    return job


def _check_completed(job: Job, folder: Path) -> None:
    if job.state != pb.JOB_STATE_COMPLETED or job.failed:
        raise JobFailed(
            f"job of {folder} ended {pb.JobState.Name(job.state)} with {job.failed} failed images"
            + (f": {job.error}" if job.error else "")
        )


def run_cli_submit(gateway: str, folder: Path, output: Path) -> JobRun:
    """`podium submit DIR --wait` in a subprocess, once, for the record (includes CLI start-up)."""
    command = [
        sys.executable,
        "-m",
        "podium",
        "submit",
        str(folder),
        "--wait",
        "--gateway",
        gateway,
        "--show",
        "0",
        "--output",
        str(output),
    ]
    images = count_images(folder)
    started = time.perf_counter()
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, "COLUMNS": "120"},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise JobFailed(f"`podium submit --wait` exited {done.returncode}: {done.stderr[-2000:]}")
    return JobRun("", images=images, seconds=seconds, server_seconds=seconds)


def run_fairness(client: PodiumClient, big_folder: Path, small_folder: Path, delay_s: float) -> FairnessRun:
    """The small job's time while a big job runs; the big job is cancelled afterwards.

    The big job is a path-mode job (a folder the workers read), so it is queued at once
    in full, as large jobs on shared storage are; the small one is uploaded."""
    big = client.submit_path(str(big_folder.resolve()), name="bench big job")
    try:
        big = _wait_running(client, big.id, delay_s)
        small = run_job(client, small_folder)
        after = client.get_job(big.id)
    finally:
        client.cancel(big.id)
        _follow(client, client.get_job(big.id))
    return FairnessRun(
        small=small,
        big_done_before=int(big.succeeded + big.failed),
        big_done_after=int(after.succeeded + after.failed),
        big_total=int(after.total),
    )


def _wait_running(client: PodiumClient, job_id: str, delay_s: float) -> Job:
    """Wait until the job has classified something and has run for ``delay_s``."""
    started = time.perf_counter()
    while True:
        job = client.get_job(job_id)
        if job.state in TERMINAL:
            raise JobFailed(f"the big job ended ({pb.JobState.Name(job.state)}) before the small one was submitted")
        elapsed = time.perf_counter() - started
        if job.succeeded + job.failed > 0 and elapsed >= delay_s:
            return job
        if elapsed > BIG_JOB_START_TIMEOUT_S:
            raise JobFailed(f"the big job classified nothing in {BIG_JOB_START_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)
