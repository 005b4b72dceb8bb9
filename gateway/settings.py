"""GatewaySettings: every knob of the gateway, from PODIUM_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.queue import DEFAULT_VISIBILITY_TIMEOUT_S
from jobs.store import DEFAULT_RESULT_TTL_S

DEFAULT_PORT = 50051
DEFAULT_MODEL_NAME = "resnet50_sports"


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on ('0.0.0.0' in containers)")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for jobs and the Celery broker")
    triton_url: str = Field("127.0.0.1:8001", description="Triton's gRPC address, for Classify and ListClasses")
    model_name: str = Field(DEFAULT_MODEL_NAME, description="The model's name in Triton")
    api_keys: str = Field("", description="Comma-separated accepted API keys; empty: no authentication")
    tls_cert_file: str = Field("", description="PEM certificate chain: with tls_key_file, the gateway speaks TLS")
    tls_key_file: str = Field("", description="PEM private key of tls_cert_file")
    data_roots: str = Field("", description="Comma-separated folders that path-mode jobs may name")
    chunk_size: int = Field(16, ge=1, le=1024, description="Images per worker task")
    max_queued_chunks: int = Field(2, ge=1, description="Chunks a job keeps queued at once")
    default_top_k: int = Field(5, ge=1)
    max_files_per_job: int = Field(1_000_000, ge=1)
    max_upload_bytes: int = Field(16 * 1024**3, ge=1, description="Bytes one upload job may send")
    max_file_bytes: int = Field(64 * 1024**2, ge=1, description="Larger files fail as images")
    max_pending_uploads: int = Field(1024, ge=1, description="Uploaded images a job may hold unprocessed")
    max_active_jobs: int = Field(100, ge=1, description="Jobs not yet finished, across all clients")
    classify_max_images: int = Field(32, ge=1, description="Images per synchronous Classify call")
    max_message_bytes: int = Field(32 * 1024**2, ge=1024, description="Largest gRPC message accepted")
    threads: int = Field(32, ge=2, description="Concurrent RPCs served")
    triton_timeout_s: float = Field(30.0, gt=0)
    visibility_timeout_s: int = Field(DEFAULT_VISIBILITY_TIMEOUT_S, ge=10)
    result_ttl_s: int = Field(DEFAULT_RESULT_TTL_S, ge=60)
    reconcile_interval_s: float = Field(15.0, gt=0, description="How often stalled jobs are looked for")
    stall_timeout_s: float = Field(300.0, gt=0, description="A running job without progress this long is re-enqueued")
    upload_stall_s: float = Field(900.0, gt=0, description="An upload without data this long fails")
    log_level: str = "INFO"

    def api_key_list(self) -> list[str]:
        return split_list(self.api_keys)

    def data_root_list(self) -> list[str]:
        return split_list(self.data_roots)
