"""WorkerSettings: every knob of a worker process, from PODIUM_* environment variables."""

from __future__ import annotations

from pydantic import Field

from settings import ServiceSettings

DEFAULT_TRITON_OUTAGE_LIMIT_S = 1800.0


class WorkerSettings(ServiceSettings):
    inflight: int = Field(4, ge=1, le=64, description="Images a worker keeps in flight to Triton")
    triton_outage_limit_s: float = Field(
        DEFAULT_TRITON_OUTAGE_LIMIT_S,
        gt=0,
        description="A Triton outage shorter than this fails no image; beyond it, images fail saying so",
    )
    chunk_time_s: float = Field(900.0, gt=0, description="The longest one chunk may take while Triton answers")
    chunk_lease_s: float = Field(60.0, ge=5, description="A chunk whose worker stops renewing this long is free")

    @property
    def task_time_limit_s(self) -> float:
        """Celery kills a task (as a hung worker) after this; longer than any wait for Triton."""
        return self.triton_outage_limit_s + self.chunk_time_s
