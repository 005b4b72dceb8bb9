"""JobOptions: what a client asks of a job, as the gateway's service takes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobOptions:
    """What a client asks of a job (0 / empty: the gateway's default)."""

    top_k: int = 0
    name: str = ""
    model: str = ""  # NAME or NAME:VERSION
    explain: bool = False  # each ok result carries the top-1 class's activation map
    source: str = ""  # where the images came from (informational)
    job_key: str = ""  # idempotency key: a submit with it again resumes (or returns) that job
    webhook: str = ""  # POSTed to when the job ends (gateway.webhooks)
    max_failed: str = ""  # "N" or "P%" (jobs.FailureLimit)
    incremental: str = ""  # a delta job's name (gateway.delta)
