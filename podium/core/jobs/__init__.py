"""Jobs, in domain terms only: states, the job record, per-image outcomes, the file walk.

Pure: no Redis, no Celery, no gRPC. The Redis store is ``jobstore``.
"""

from podium.core.jobs.files import FileEntry, is_hidden, walk_entries, walk_files
from podium.core.jobs.limits import FailureLimit
from podium.core.jobs.locations import S3Url, is_s3_url
from podium.core.jobs.model import (
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
from podium.core.jobs.options import DEFAULT_TOP_K, JobOptions, option_names

__all__ = [
    "DEFAULT_TOP_K",
    "TERMINAL_STATES",
    "ActivationMap",
    "FailureLimit",
    "FileEntry",
    "ImageOutcome",
    "ImageResult",
    "Job",
    "JobMode",
    "JobOptions",
    "JobState",
    "Prediction",
    "RecordedOutcome",
    "S3Url",
    "files",
    "is_hidden",
    "is_s3_url",
    "model",
    "option_names",
    "walk_entries",
    "walk_files",
]
