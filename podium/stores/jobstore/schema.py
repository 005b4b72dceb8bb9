"""The Redis layout of a job: its keys, and every field of its hash, in one place.

The public fields of the hash are the ``Job`` record's (read from the dataclass: each field
parsed by its type, a new job's value its default); the others are the store's bookkeeping.
The store writes the hash from ``JOB_HASH``, reads ``Job`` records back through it, and the
Lua scripts name its fields through it (``lua``): a field renamed in ``Job`` is renamed
everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template

from podium.core.jobs import Job, JobMode, JobState

KEY_PREFIX = "podium"
ACTIVE_JOBS_KEY = f"{KEY_PREFIX}:active"
# Every job's id, scored by its creation time: the job list (expired entries pruned as read).
JOBS_INDEX_KEY = f"{KEY_PREFIX}:jobs"
# Ids of ended jobs with a webhook, waiting for a gateway to deliver it; and those being delivered.
WEBHOOK_QUEUE_KEY = f"{KEY_PREFIX}:webhooks"
WEBHOOK_SENDING_KEY = f"{KEY_PREFIX}:webhooks:sending"
# Ended jobs with result files whose parts are not compacted yet, scored by their end: the
# worker that ends a job compacts it; a gateway does what a worker left (it died, the sink was away).
COMPACT_QUEUE_KEY = f"{KEY_PREFIX}:compact"


def delta_key_name(owner: str, name: str) -> str:
    """The key naming the last completed job of a delta job's name (per API key)."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:delta:{owner or '-'}:{digest}"


def job_key_name(owner: str, job_key: str) -> str:
    """The key that binds a client's job key (per API key) to its job id."""
    digest = hashlib.sha256(job_key.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:jobkey:{owner or '-'}:{digest}"


@dataclass(frozen=True)
class JobKeys:
    """The keys of one job. ``all`` is the KEYS order every Lua script receives."""

    job_id: str

    @property
    def job(self) -> str:
        return f"{KEY_PREFIX}:job:{self.job_id}"

    @property
    def paths(self) -> str:
        return f"{self.job}:paths"

    @property
    def results(self) -> str:
        return f"{self.job}:results"

    @property
    def blobs(self) -> str:
        return f"{self.job}:blobs"

    @property
    def large_blobs(self) -> str:
        """The indices of an upload's files too large for one Redis command; each one's bytes
        are a string of their own, ``large_blob``, written in pieces (``upload_files``)."""
        return f"{self.blobs}:large"

    def large_blob(self, index: int) -> str:
        """The bytes of large file ``index`` (the Lua scripts name it ``KEYS[8] .. ':' .. index``)."""
        return f"{self.large_blobs}:{index}"

    @property
    def chunks(self) -> str:
        return f"{self.job}:chunks"

    @property
    def attempts(self) -> str:
        return f"{self.job}:attempts"

    @property
    def ended_channel(self) -> str:
        """Pub/sub channel on which a job's end is announced."""
        return f"{self.job}:ended"

    def lease(self, chunk: int) -> str:
        """The key a worker holds while it processes ``chunk`` (with a TTL, renewed)."""
        return f"{self.job}:lease:{chunk}"

    @property
    def all(self) -> list[str]:
        return [
            self.job,
            self.paths,
            self.results,
            self.blobs,
            self.chunks,
            ACTIVE_JOBS_KEY,
            self.attempts,
            self.large_blobs,
        ]

    @property
    def ending(self) -> list[str]:
        """``all`` and the webhook queue as KEYS[9], for the scripts that may end the job."""
        return [*self.all, WEBHOOK_QUEUE_KEY]

    def with_lease(self, chunk: int) -> list[str]:
        """``all`` and the chunk's lease as KEYS[9], for the lease scripts."""
        return [*self.all, self.lease(chunk)]


@dataclass(frozen=True)
class HashField:
    """One field of the job hash: how its text is read back, and its value in a new job."""

    name: str
    parse: Callable[[str], object]
    initial: object
    public: bool = True  # a field of the Job record; the others are the store's bookkeeping


def _flag(text: str) -> bool:
    return text == "1"


class JobHash:
    """The fields of the job hash and the conversions between it and ``Job``."""

    def __init__(self, fields: tuple[HashField, ...]) -> None:
        self.fields = {field.name: field for field in fields}

    @property
    def public_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if field.public]

    def new(self, **values: object) -> dict[str, object]:
        """The mapping to HSET for a new job: initial values, overridden by ``values``."""
        unknown = set(values) - set(self.fields)
        if unknown:
            raise KeyError(f"not fields of the job hash: {sorted(unknown)}")
        return {name: _stored(values.get(name, field.initial)) for name, field in self.fields.items()}

    def to_job(self, raw: Mapping[bytes | str, bytes | str]) -> Job:
        """A Job from HGETALL's answer; absent fields take their initial values."""
        text = {_text(key): _text(value) for key, value in raw.items()}
        values = {}
        for name in self.public_names:
            field = self.fields[name]
            values[name] = field.parse(text[name]) if name in text else field.initial
        return Job(**values)

    def lua(self, script: str) -> str:
        """``script`` with each ``$field`` replaced by the field's quoted name."""
        return Template(script).substitute({name: f"'{name}'" for name in self.fields})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stored(value: object) -> object:
    if isinstance(value, JobState | JobMode):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


_PARSERS: dict[object, Callable[[str], object]] = {bool: _flag, int: int, float: float, str: str}
_NEW_JOB = {"state": JobState.UPLOADING, "mode": JobMode.UPLOAD}  # the record's fields without a default


def _record_fields() -> tuple[HashField, ...]:
    """The Job record's fields as hash fields: read back by their type, a new job's value their default."""
    types = typing.get_type_hints(Job)
    fields = []
    for item in dataclasses.fields(Job):
        kind = types[item.name]
        parse = _PARSERS.get(kind, kind)  # an enum parses its own value
        initial = _NEW_JOB.get(item.name, item.default if item.default is not dataclasses.MISSING else "")
        fields.append(HashField(item.name, parse, initial))
    return tuple(fields)


JOB_HASH = JobHash(
    (
        *_record_fields(),
        # Bookkeeping of the store and its scripts.
        # The job's chunks (chunk_layout.ChunkLayout): the first ones' size, the later segments
        # where they grew, and what growth may reach (0: none) at about chunk_seconds each.
        HashField("chunk_size", int, 1, public=False),
        HashField("chunk_layout", str, "", public=False),
        HashField("max_chunk_size", int, 0, public=False),
        HashField("chunk_seconds", float, 0.0, public=False),
        # The Redis key that binds its job key to it: ending the job extends it to the job's TTL.
        HashField("job_key_binding", str, "", public=False),
        HashField("dispatched", int, 0, public=False),
        # A delta job's name as a Redis key: completing the job makes it the one the next run compares with.
        HashField("delta_key", str, "", public=False),
        HashField("upload_done", _flag, False, public=False),
        HashField("pending_bytes", int, 0, public=False),  # uploaded bytes no worker has finished
        # max_failed as the scripts check it (podium.core.jobs.FailureLimit); -1: no such limit.
        HashField("fail_count_limit", int, -1, public=False),
        HashField("fail_percent_limit", float, -1.0, public=False),
    )
)
# With a results sink (results_url), the job completes when every chunk's file landed, not
# when every image has an answer.


def job_field_names() -> list[str]:
    """The Job dataclass's fields, which the public hash fields must equal (a test checks)."""
    return [field.name for field in dataclasses.fields(Job)]
