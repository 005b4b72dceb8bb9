"""Jobs: the domain model and its Redis store, shared by gateway and workers."""

from jobs.model import (
    TERMINAL_STATES,
    ImageOutcome,
    ImageResult,
    Job,
    JobMode,
    JobState,
    Prediction,
)
from jobs.store import JobStore

__all__ = [
    "TERMINAL_STATES",
    "ImageOutcome",
    "ImageResult",
    "Job",
    "JobMode",
    "JobState",
    "JobStore",
    "Prediction",
]
