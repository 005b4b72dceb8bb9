"""The job domain: states, the job record and per-image outcomes."""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.core.jobs.options import DEFAULT_TOP_K, JobOptions

# What a recorded outcome keeps: probabilities to 7 digits, its time to the millisecond.
PROBABILITY_DIGITS = 7
TIME_DIGITS = 3
# json.dumps with these options builds an encoder per call (~6 µs of an outcome's ~20).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


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
    UPLOAD = "upload"  # the bytes came with the request (Redis holds them until processed)
    PATH = "path"  # files under ``root``, a folder inside a data root; paths relative to it
    S3 = "s3"  # objects under ``root``, an s3:// prefix; paths are keys relative to it
    MANIFEST = "manifest"  # each path as a manifest line gave it: a file under a data root, or s3://


@dataclass(frozen=True, kw_only=True)
class Job(JobOptions):
    """A job as stored in Redis: the options it was asked with, and what the service adds."""

    id: str
    state: JobState
    mode: JobMode
    top_k: int = DEFAULT_TOP_K  # resolved: never 0 in a stored job
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    root: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    retries: int = 0  # chunk starts beyond each chunk's first: redeliveries after a worker died
    owner: str = ""  # who may see the job: a digest of the API key that created it ("" without keys)
    model_name: str = ""  # the model in Triton, and its version, fixed when the job was submitted
    model_version: str = ""
    cached: int = 0  # succeeded images whose outcome came from the result cache (a duplicate)
    results_url: str = ""  # where the answers go as Parquet files (resultsink); "" = kept in Redis only
    unchanged: int = 0  # a delta job's entries carried over from that run (not in total)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float


# An activation map's cells are kept as 1/255 steps: 49 bytes for a 7 x 7 map.
MAP_LEVELS = 255


@dataclass(frozen=True)
class ActivationMap:
    """Where the model looked for one class: a grid of cells in [0, 1], the largest 1.

    ``levels`` holds each cell, row-major, quantised to 0..MAP_LEVELS (one byte): the map
    is a picture for people, and 1/255 steps keep its Pearson r with the exact one above
    0.9999 while costing Redis 49 bytes a 7 x 7 map.
    """

    class_index: int
    grid: tuple[int, int]
    levels: bytes

    def __post_init__(self) -> None:
        if len(self.levels) != self.grid[0] * self.grid[1]:
            raise ValueError(f"a {self.grid[0]} x {self.grid[1]} map has {self.grid[0] * self.grid[1]} cells")

    @classmethod
    def of(cls, class_index: int, grid: tuple[int, int], values: Sequence[float]) -> ActivationMap:
        """Quantise a map's cells (already ReLU'd and scaled to a maximum of 1)."""
        levels = bytes(min(MAP_LEVELS, max(0, round(float(v) * MAP_LEVELS))) for v in values)
        return cls(int(class_index), (int(grid[0]), int(grid[1])), levels)

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(level / MAP_LEVELS for level in self.levels)

    def encode(self) -> list:
        return [self.class_index, *self.grid, base64.b64encode(self.levels).decode("ascii")]

    @classmethod
    def decode(cls, row: list) -> ActivationMap:
        index, rows, cols, levels = row
        return cls(int(index), (int(rows), int(cols)), base64.b64decode(levels))


@dataclass(frozen=True)
class ImageOutcome:
    """The result of one image: top-k predictions (and, if asked, a map), or a readable error."""

    predictions: tuple[Prediction, ...] = field(default=())
    error: str | None = None
    cam: ActivationMap | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def encode(self, finished_at: float | None = None, sha256: str | None = None) -> str:
        """Compact JSON (a finished 100,000-image job must stay small in Redis); a recorded
        result also carries when it was finished and the digest of the image's bytes."""
        data: dict = {}
        if self.error is not None:
            data["e"] = self.error
        else:
            data["k"] = [[p.label, p.index, round(p.probability, PROBABILITY_DIGITS)] for p in self.predictions]
            if self.cam is not None:
                data["c"] = self.cam.encode()
        if finished_at is not None:
            data["t"] = round(finished_at, TIME_DIGITS)
        if sha256 is not None:
            data["h"] = sha256
        return _COMPACT_JSON.encode(data)

    @classmethod
    def decode(cls, text: str | bytes) -> ImageOutcome:
        return cls.from_json(json.loads(text))

    @classmethod
    def from_json(cls, data: dict) -> ImageOutcome:
        if "e" in data:
            return cls(error=data["e"])
        cam = ActivationMap.decode(data["c"]) if "c" in data else None
        return cls(predictions=tuple(Prediction(str(l), int(i), float(p)) for l, i, p in data["k"]), cam=cam)


@dataclass(frozen=True)
class RecordedOutcome:
    """An outcome as the job store recorded it: when, and of which bytes (None if unread)."""

    outcome: ImageOutcome
    finished_at: float
    sha256: str | None

    @classmethod
    def decode(cls, text: str | bytes) -> RecordedOutcome:
        data = json.loads(text)
        return cls(ImageOutcome.from_json(data), float(data.get("t", 0.0)), data.get("h"))

    @classmethod
    def of(cls, outcome: ImageOutcome, finished_at: float | None = None, sha256: str | None = None) -> RecordedOutcome:
        """``decode(outcome.encode(finished_at, sha256))`` without the JSON, the same values to
        the bit: what a chunk's file is made of straight after its run recorded it. An outcome
        whose probabilities are already rounded as a record keeps them (``top_k_rows`` rounds
        them) is kept as it is: parsing or rebuilding it cost ~20 µs an image."""
        return cls(_as_recorded(outcome), 0.0 if finished_at is None else round(finished_at, TIME_DIGITS), sha256)


def _as_recorded(outcome: ImageOutcome) -> ImageOutcome:
    """``outcome`` as ``ImageOutcome.decode(outcome.encode())`` gives it back."""
    if not outcome.ok:
        return outcome if not outcome.predictions and outcome.cam is None else ImageOutcome(error=outcome.error)
    if all(round(p.probability, PROBABILITY_DIGITS) == p.probability for p in outcome.predictions):
        return outcome
    predictions = tuple(
        Prediction(str(p.label), int(p.index), float(round(p.probability, PROBABILITY_DIGITS)))
        for p in outcome.predictions
    )
    return ImageOutcome(predictions=predictions, cam=outcome.cam)


@dataclass(frozen=True)
class ImageResult:
    """An image's outcome together with its place in the job."""

    index: int
    path: str
    outcome: ImageOutcome
    sha256: str | None = None  # of the image's bytes, where a results sink asked for it
    finished_at: float = 0.0  # when the answer was recorded (jobs with a results sink)
