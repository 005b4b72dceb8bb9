"""What the pages show of a job: its state word, progress, rate, ETA and times."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from podium.client.records import Job
from podium.client.states import is_terminal, state_name
from podium.core.proto import podium_pb2 as pb


@dataclass(frozen=True)
class JobView:
    id: str
    name: str
    state: str  # lower case: uploading, running, completed, cancelled, failed
    terminal: bool
    total: int
    done: int
    succeeded: int
    failed: int
    cached: int
    error: str
    created: str
    duration: str
    rate: float  # images per second over the job's life so far
    eta: str
    percent: float
    mode: str
    model: str
    top_k: int
    explain: bool
    source: str

    def record(self) -> dict:
        """The live fields, as the page's script reads them (SSE and /api/jobs)."""
        return {
            "id": self.id,
            "state": self.state,
            "terminal": self.terminal,
            "total": self.total,
            "done": self.done,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cached": self.cached,
            "rate": round(self.rate, 1),
            "eta": self.eta,
            "duration": self.duration,
            "percent": round(self.percent, 1),
            "error": self.error,
        }


def job_view(job: Job, now: float | None = None) -> JobView:
    now = time.time() if now is None else now
    done = job.succeeded + job.failed
    end = job.finished_at or now
    elapsed = max(0.0, end - job.created_at)
    rate = done / elapsed if elapsed > 0 and done else 0.0
    terminal = is_terminal(job)
    left = max(0, job.total - done)
    eta = "" if terminal or not rate or job.state == pb.JOB_STATE_UPLOADING else duration_text(left / rate)
    return JobView(
        id=job.id,
        name=job.spec.name,
        state=state_name(job.state),
        terminal=terminal,
        total=job.total,
        done=done,
        succeeded=job.succeeded,
        failed=job.failed,
        cached=job.cached,
        error=job.error,
        created=datetime.fromtimestamp(job.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        duration=duration_text(elapsed),
        rate=rate,
        eta=eta,
        percent=100.0 * done / job.total if job.total else (100.0 if terminal else 0.0),
        mode=job.mode,
        model=job.spec.model,
        top_k=job.spec.top_k,
        explain=job.spec.explain,
        source=job.spec.source,
    )


def duration_text(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
