"""What the client library returns: Podium's own types, made from the wire's messages in one place.

Each type has the fields (names and meaning) of its message in ``podium.proto`` — the API's
documentation holds for both — but they are plain frozen dataclasses: typed, comparable,
hashable, with ``None`` for a map an image does not have, and enums that are ``IntEnum``s
equal to the wire's numbers (``job.state == JobState.COMPLETED``; the generated constants
compare equal too). Callers never handle protobuf objects.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from functools import cache

from podium.core.jobs import Prediction
from podium.core.proto import podium_pb2 as pb


class JobState(enum.IntEnum):
    """A job's state (``JobState`` in the API)."""

    UNSPECIFIED = pb.JOB_STATE_UNSPECIFIED
    UPLOADING = pb.JOB_STATE_UPLOADING
    RUNNING = pb.JOB_STATE_RUNNING
    COMPLETED = pb.JOB_STATE_COMPLETED
    CANCELLED = pb.JOB_STATE_CANCELLED
    FAILED = pb.JOB_STATE_FAILED

    @property
    def word(self) -> str:
        """The lower-case word people read: ``"running"``."""
        return self.name.lower()

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED)


class ImageStatus(enum.IntEnum):
    """Whether an image was classified (``ImageStatus`` in the API)."""

    UNSPECIFIED = pb.IMAGE_STATUS_UNSPECIFIED
    OK = pb.IMAGE_STATUS_OK
    ERROR = pb.IMAGE_STATUS_ERROR


@dataclass(frozen=True)
class JobSpec:
    """The options a job was submitted with, as the gateway resolved them."""

    top_k: int = 0
    name: str = ""
    model: str = ""
    explain: bool = False
    source: str = ""
    webhook: str = ""
    max_failed: str = ""
    job_key: str = ""
    incremental: str = ""


@dataclass(frozen=True)
class Job:
    """A job as its owner sees it: state, counts, times (Unix seconds) and options."""

    id: str = ""
    state: JobState = JobState.UNSPECIFIED
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    spec: JobSpec = JobSpec()
    mode: str = ""
    cached: int = 0
    unchanged: int = 0

    @property
    def terminal(self) -> bool:
        return self.state.terminal


@dataclass(frozen=True)
class ClassActivationMap:
    """Where the image's top-1 class is: a rows x cols grid, row-major, each cell in [0, 1]."""

    class_index: int = 0
    rows: int = 0
    cols: int = 0
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class ImageResult:
    """One image's answer and its place in the job."""

    index: int = 0
    path: str = ""
    status: ImageStatus = ImageStatus.UNSPECIFIED
    top_k: tuple[Prediction, ...] = ()
    error: str = ""
    cam: ClassActivationMap | None = None
    sha256: str = ""
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == ImageStatus.OK


@dataclass(frozen=True)
class ModelClasses:
    """A served model's classes and what it is (``ListClassesResponse``)."""

    classes: tuple[str, ...] = ()
    model_name: str = ""
    untrained: bool = False
    model_version: str = ""
    target: str = ""
    precision: str = ""
    explains: bool = False
    resize: int = 0
    crop: int = 0
    architecture: str = ""
    interpolation: str = ""
    grayscale: bool = False


@dataclass(frozen=True)
class WorkerStatus:
    name: str = ""


@dataclass(frozen=True)
class ServiceStatus:
    """Whether Redis, the default model and the workers answer, as the gateway sees them."""

    redis_ok: bool = False
    model_ok: bool = False
    model: str = ""
    model_error: str = ""
    workers: tuple[WorkerStatus, ...] = ()
    checked_at: float = 0.0


Record = typing.TypeVar("Record")


def from_message(cls: type[Record], message) -> Record:
    """``cls`` with each field read from the message's field of the same name: nested
    messages become their types (an absent one None where the field may be None), repeated
    fields tuples, enums their IntEnum."""
    values = {}
    for name, kind, optional in _fields(cls):
        value = getattr(message, name)
        if dataclasses.is_dataclass(kind):
            value = from_message(kind, value) if message.HasField(name) or not optional else None
        elif isinstance(kind, tuple):
            (item,) = kind
            value = tuple(from_message(item, v) if dataclasses.is_dataclass(item) else item(v) for v in value)
        elif isinstance(kind, type) and issubclass(kind, enum.IntEnum):
            value = kind(value) if value in kind._value2member_map_ else value  # a newer gateway's: its number
        else:
            value = kind(value)
        values[name] = value
    return cls(**values)


def own(cls: type[Record], value) -> Record:
    """``value`` as ``cls``: itself, or converted from the wire's message (functions that take
    a record also take the message a caller holds, e.g. from a stub of its own)."""
    return value if isinstance(value, cls) else from_message(cls, value)


@cache
def _fields(cls: type) -> tuple[tuple[str, object, bool], ...]:
    """(name, type, may be None) of each field; a repeated field's type is (item type,)."""
    hints = typing.get_type_hints(cls)
    fields = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = type(None) in typing.get_args(hint)
        if typing.get_origin(hint) is tuple:
            kind: object = (args[0],)
        elif optional:
            kind = args[0]
        else:
            kind = hint
        fields.append((field.name, kind, optional))
    return tuple(fields)
