"""JobOptions <-> JobSpec, the one place the wire form of a job's options is converted.

The two have the same fields by name (``tests/unit/test_job_options.py``), so a new option
needs no code here."""

from __future__ import annotations

import dataclasses

from podium.core.jobs import JobOptions
from podium.core.proto import podium_pb2 as pb


def to_spec(options: JobOptions) -> pb.JobSpec:
    return pb.JobSpec(**dataclasses.asdict(options))


def from_spec(spec: pb.JobSpec) -> JobOptions:
    return JobOptions(**{option.name: getattr(spec, option.name) for option in dataclasses.fields(JobOptions)})
