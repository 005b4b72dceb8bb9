"""What the job store hands back besides jobs: a chunk's claim, a page of the job list, and
the signal that wakes a waiter when a job ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import redis

from podium.core.jobs import Job, RecordedOutcome
from podium.stores.jobstore.chunk_layout import ChunkLayout
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import JobKeys


@dataclass(frozen=True)
class ChunkClaim:
    """What acquire_chunk found: ``ok`` (taken; ``value`` = this start's number, 1 unless earlier
    starts died), ``busy`` (another live worker holds it; ``value`` = ms until its lease
    ends), ``done`` (finished already) or ``ended`` (the job is over)."""

    outcome: str
    value: int

    @property
    def taken(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class ChunkRecords:
    """What Redis holds of a chunk: ``done`` once it was counted done (with a results sink, its
    records are then in its file, not here), and (path, record or None) per image asked for;
    ``layout``: the job's chunk layout as read with them (the chunk is the one the caller
    meant only if it laid chunks out the same)."""

    done: bool
    records: list[tuple[str, RecordedOutcome | None]]
    layout: ChunkLayout


@dataclass(frozen=True)
class JobPage:
    """One page of the job list, newest first; ``next_cursor`` is "" on the last page."""

    jobs: list[Job]
    next_cursor: str


@convert_redis_errors
class JobEndSignal:
    """Wakes a waiter the moment a job ends (Redis pub/sub), instead of at its next poll."""

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(JobKeys(job_id).ended_channel)

    def wait(self, timeout_s: float) -> bool:
        """Block up to timeout_s; true if the job ended meanwhile."""
        return self._pubsub.get_message(timeout=timeout_s) is not None

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class Stamp:
    """What a record of a job with a results sink keeps besides the outcome (the file's
    ``finished_at`` is the time of recording): the digest of the image's bytes, if read."""

    sha256: str | None = None
