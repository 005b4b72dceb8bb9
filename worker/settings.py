"""WorkerSettings: every knob of a worker process, from PODIUM_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from imaging import DEFAULT_MAX_PIXELS
from jobs.queue import DEFAULT_VISIBILITY_TIMEOUT_S
from jobs.store import DEFAULT_RESULT_TTL_S

DEFAULT_MODEL_NAME = "resnet50_sports"


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for jobs and the Celery broker")
    triton_url: str = Field("127.0.0.1:8001", description="Triton's gRPC address, host:port")
    model_name: str = Field(DEFAULT_MODEL_NAME, description="The model's name in Triton")
    inflight: int = Field(4, ge=1, le=64, description="Images a worker keeps in flight to Triton")
    max_queued_chunks: int = Field(2, ge=1, description="Chunks a job keeps queued at once")
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1, description="Larger image files fail")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Larger images fail (decompression bombs)")
    triton_timeout_s: float = Field(30.0, gt=0, description="Time-out of one Triton request")
    triton_wait_s: float = Field(300.0, gt=0, description="How long to wait for an unavailable Triton")
    visibility_timeout_s: int = Field(DEFAULT_VISIBILITY_TIMEOUT_S, ge=10)
    result_ttl_s: int = Field(DEFAULT_RESULT_TTL_S, ge=60, description="How long finished jobs are kept")
    data_roots: str = Field("", description="Comma-separated folders path-mode jobs may read")
    log_level: str = "INFO"
