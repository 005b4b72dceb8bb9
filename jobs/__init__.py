"""Jobs, in domain terms only: states, the job record, per-image outcomes, the file walk.

Pure: no Redis, no Celery, no gRPC. The Redis store is ``jobstore``.
"""

from jobs.files import FileEntry, is_hidden, walk_entries, walk_files
from jobs.limits import FailureLimit
from jobs.locations import S3Url, is_s3_url
from jobs.model import (
    TERMINAL_STATES,
    ActivationMap,
    ImageOutcome,
    ImageResult,
    Job,
    JobMode,
    JobState,
    Prediction,
    RecordedOutcome,
)

__all__ = [
    "TERMINAL_STATES",
    "ActivationMap",
    "FailureLimit",
    "FileEntry",
    "ImageOutcome",
    "ImageResult",
    "Job",
    "JobMode",
    "JobState",
    "Prediction",
    "RecordedOutcome",
    "S3Url",
    "is_hidden",
    "is_s3_url",
    "walk_entries",
    "walk_files",
]
