"""Job states as clients see them: the API's enum, in the lower-case words people read."""

from __future__ import annotations

from podium.client.records import Job
from podium.core.proto import podium_pb2 as pb

TERMINAL_STATES = frozenset({pb.JOB_STATE_COMPLETED, pb.JOB_STATE_CANCELLED, pb.JOB_STATE_FAILED})


def state_name(state: int) -> str:
    """``JOB_STATE_RUNNING`` -> ``"running"``."""
    return pb.JobState.Name(state).removeprefix("JOB_STATE_").lower()


def is_terminal(job: Job) -> bool:
    return job.state in TERMINAL_STATES
