"""The job domain: states, the job record and per-image outcomes."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field


class JobState(str, enum.Enum):
    UPLOADING = "uploading"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED})


class JobMode(str, enum.Enum):
    UPLOAD = "upload"
    PATH = "path"


@dataclass(frozen=True)
class Job:
    """A job as stored in Redis."""

    id: str
    state: JobState
    mode: JobMode
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    top_k: int = 5
    name: str = ""
    root: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    retries: int = 0  # chunk starts beyond each chunk's first: redeliveries after a worker died
    owner: str = ""  # who may see the job: a digest of the API key that created it ("" without keys)
    model_name: str = ""  # the model in Triton, and its version, fixed when the job was submitted
    model_version: str = ""

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class ImageOutcome:
    """The result of one image: top-k predictions, or a readable error."""

    predictions: tuple[Prediction, ...] = field(default=())
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def encode(self) -> str:
        # Compact on purpose: a finished 100,000-image job must stay small in Redis.
        if self.error is not None:
            return json.dumps({"e": self.error}, separators=(",", ":"))
        rows = [[p.label, p.index, round(p.probability, 7)] for p in self.predictions]
        return json.dumps({"k": rows}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str | bytes) -> ImageOutcome:
        data = json.loads(text)
        if "e" in data:
            return cls(error=data["e"])
        return cls(predictions=tuple(Prediction(str(l), int(i), float(p)) for l, i, p in data["k"]))


@dataclass(frozen=True)
class ImageResult:
    """An image's outcome together with its place in the job."""

    index: int
    path: str
    outcome: ImageOutcome
