"""WorkerSettings: every knob of a worker process, from PODIUM_* environment variables."""

from __future__ import annotations

from pydantic import Field

from settings import ServiceSettings


class WorkerSettings(ServiceSettings):
    inflight: int = Field(4, ge=1, le=64, description="Images a worker keeps in flight to Triton")
    triton_wait_s: float = Field(300.0, gt=0, description="How long to wait for an unavailable Triton")
