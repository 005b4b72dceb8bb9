"""ClusterSettings: what `podium up` starts and where, from ``PODIUM_UP_*`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.core.settings import DEFAULT_GATEWAY_PORT, DEFAULT_WEB_PORT


class ClusterSettings(BaseSettings):
    """What `podium up` starts and where; ports left at 0 are picked free.

    The services' own settings (``PODIUM_*``: API keys, data roots, chunk size, ...) are
    not repeated here: each child gets its settings class as read from this process's
    environment, with ``service`` on top, and only the addresses the cluster owns
    (Redis, Triton, the gateway's port) set by the cluster."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_UP_", extra="ignore")

    model_repository: Path = Field(Path("model_repository"), description="Triton model repository")
    workers: int = Field(2, ge=1, description="Celery worker processes")
    pin_workers: bool = Field(
        True,
        description="Give each worker process its own share of this machine's CPUs (PODIUM_CPU_AFFINITY), "
        "unless PODIUM_CPU_AFFINITY is set: a process's decoding threads on cores that other processes use "
        "cost 20-60 % more CPU (docs/performance.md, 00k) per image",
    )
    gateway_port: int = Field(DEFAULT_GATEWAY_PORT, ge=0, le=65535)
    redis_port: int = Field(0, ge=0, le=65535)
    triton_grpc_port: int = Field(0, ge=0, le=65535)
    triton_http_port: int = Field(0, ge=0, le=65535)
    triton_metrics_port: int = Field(0, ge=0, le=65535)
    web: bool = Field(True, description="Serve the web page (`podium web`) beside the gateway")
    web_port: int = Field(DEFAULT_WEB_PORT, ge=0, le=65535, description="The web page's port (0: a free one)")
    metrics: bool = Field(True, description="Serve the gateway's and each worker's Prometheus metrics (free ports)")
    run_dir: Path | None = Field(None, description="Logs and Redis data; a temporary folder if unset")
    redis_server: str = Field("redis-server", description="The redis-server binary")
    redis_maxmemory: str = Field(
        "1gb", description="Redis's memory limit (noeviction: a full Redis refuses writes, nothing is dropped)"
    )
    ready_timeout_s: float = Field(180.0, gt=0)
    service: dict[str, object] = Field(
        default_factory=dict,
        description="Settings of the gateway and workers by field name (e.g. api_keys), over PODIUM_* variables",
    )
    worker_args: list[str] = Field(default_factory=list, description="More `celery worker` arguments")
