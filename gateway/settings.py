"""GatewaySettings: every knob of the gateway, from PODIUM_* environment variables."""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.egress import EgressPolicy
from podium.core.errors import InvalidArgument
from podium.core.settings import DEFAULT_GATEWAY_PORT, ServiceSettings, split_list
from podium.stores.resultsink import open_sink

DEFAULT_PORT = DEFAULT_GATEWAY_PORT


class GatewaySettings(ServiceSettings):
    host: str = Field("127.0.0.1", description="Address to listen on ('0.0.0.0' in containers)")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    api_keys: str = Field("", description="Comma-separated accepted API keys (each sees its own jobs)")
    admin_api_keys: str = Field("", description="Comma-separated keys that see and manage every job")
    allow_unauthenticated: bool = Field(
        False, description="Serve without API keys on a non-loopback address (refused unless true)"
    )
    reflection: bool = Field(False, description="Serve gRPC reflection (for grpcurl); needs a key like any RPC")
    tls_cert_file: str = Field("", description="PEM certificate chain: with tls_key_file, the gateway speaks TLS")
    tls_key_file: str = Field("", description="PEM private key of tls_cert_file")
    chunk_size: int = Field(
        16, ge=1, le=1024, description="Images per worker task (the fewest, when chunks are sized by time)"
    )
    chunk_seconds: float = Field(
        1.0,
        ge=0,
        description="Size a job's chunks to about this much of one worker's time, from the rate the workers "
        "measure (a power of two from PODIUM_CHUNK_SIZE to PODIUM_MAX_CHUNK_SIZE, for an upload to a quarter of "
        "PODIUM_MAX_PENDING_UPLOADS at most; a running job's later chunks grow as the rate is measured, and its "
        "last ones share out what is left so the workers finish together); 0: always PODIUM_CHUNK_SIZE",
    )
    # A chunk costs its worker ~7.5 CPU-ms whatever its size (Celery, leases, its result file):
    # 1 s of a worker decoding 224x224 JPEGs is 512-1,024 images (docs/performance.md, 00i).
    max_chunk_size: int = Field(1024, ge=1, le=4096, description="Images per worker task at most")
    default_top_k: int = Field(5, ge=1)
    max_files_per_job: int = Field(1_000_000, ge=1)
    max_upload_bytes: int = Field(16 * 1024**3, ge=1, description="Bytes one upload job may send")
    max_pending_uploads: int = Field(1024, ge=1, description="Uploaded images a job may hold unprocessed")
    max_pending_upload_bytes: int = Field(
        256 * 1024**2, ge=1024**2, description="Uploaded bytes a job may hold unprocessed in Redis"
    )
    redis_high_water: float = Field(
        0.8, gt=0, le=1, description="Redis memory use (of maxmemory) at which new jobs are refused and uploads wait"
    )
    max_active_jobs: int = Field(100, ge=1, description="Jobs not yet finished, across all clients")
    max_queued_images_per_owner: int = Field(
        2_000_000,
        ge=1,
        description="Images one API key's unfinished jobs may hold unanswered (more: RESOURCE_EXHAUSTED)",
    )
    classify_max_images: int = Field(32, ge=1, description="Images per synchronous Classify call")
    max_message_bytes: int = Field(32 * 1024**2, ge=1024, description="Largest gRPC message accepted")
    threads: int = Field(256, ge=8, description="Concurrent RPCs served (threads)")
    max_streams: int = Field(200, ge=1, description="Long-lived streams (watch, follow, upload) open at once")
    max_streams_per_key: int = Field(100, ge=1, description="Long-lived streams one API key may hold open")
    upload_idle_s: float = Field(120.0, gt=0, description="An upload that sends nothing this long is cancelled")
    upload_backpressure_max_s: float = Field(
        1800.0,
        gt=0,
        description="How long an upload may stay paused because the workers do not keep up (e.g. Triton is down)",
    )
    shutdown_grace_s: float = Field(25.0, ge=0, description="Time running calls get to finish at SIGTERM")
    reconcile_interval_s: float = Field(15.0, gt=0, description="How often stalled jobs are looked for")
    stall_timeout_s: float = Field(300.0, gt=0, description="A running job without progress this long is re-enqueued")
    webhook_secret: str = Field("", description="Signs each webhook POST (X-Podium-Signature: sha256=HMAC)")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Time-out of one webhook POST")
    webhook_retry_s: float = Field(600.0, ge=0, description="How long a failing webhook is retried, with backoff")
    webhook_allow_networks: str = Field(
        "",
        description="Comma-separated CIDRs of internal networks webhooks may reach (default: public addresses only)",
    )
    upload_stall_s: float = Field(900.0, gt=0, description="An upload without data this long fails")
    results_url: str = Field(
        "",
        description="Where every job's answers go as Parquet files, one folder per job: file:///PATH or "
        "s3://BUCKET/PREFIX (boto3's standard configuration); empty: answers are kept in Redis only",
    )
    results_retention_days: int = Field(
        0,
        ge=0,
        description="Remove a job's result files this many days after they were written (0: keep them until the "
        "job is deleted); on S3 a lifecycle rule on the prefix does the same",
    )

    def api_key_list(self) -> list[str]:
        """Every key accepted: the plain ones and the admin ones."""
        return list(dict.fromkeys(split_list(self.api_keys) + split_list(self.admin_api_keys)))

    def admin_api_key_list(self) -> list[str]:
        return split_list(self.admin_api_keys)

    def webhook_policy(self) -> EgressPolicy:
        return EgressPolicy.parse(self.webhook_allow_networks)

    @model_validator(mode="after")
    def _webhook_networks_are_cidrs(self) -> GatewaySettings:
        try:
            self.webhook_policy()
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _results_url_is_a_sink(self) -> GatewaySettings:
        if self.results_url:
            try:
                open_sink(self.results_url)
            except InvalidArgument as exc:
                raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _streams_leave_threads_free(self) -> GatewaySettings:
        if self.max_streams > self.threads - 4:
            raise ValueError(
                f"max_streams ({self.max_streams}) must leave threads ({self.threads}) for short calls: "
                "at most threads - 4"
            )
        return self
