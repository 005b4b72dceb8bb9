"""WorkerSettings: every knob of a worker process, from PODIUM_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from podium.core.cpus import format_cpu_list, parse_cpu_list
from podium.core.errors import InvalidArgument
from podium.core.settings import ServiceSettings

DEFAULT_TRITON_OUTAGE_LIMIT_S = 1800.0


class WorkerSettings(ServiceSettings):
    inflight: int = Field(4, ge=1, le=64, description="Images a worker process decodes and keeps in flight at once")
    images_per_request: int = Field(
        32,
        ge=1,
        le=64,
        description="Images per Triton request (at most the model's max_batch_size): a chunk's images go in "
        "requests of up to this many, the next one decoded while one is answered. The CPU exports run no "
        "batcher, so a request is one run of the model (32 at most): larger ones cost Triton less per image. "
        "Behind a dynamic batcher (the GPU targets, 64) keep it at half the max_batch_size or less: a request as "
        "large as a batch cannot share one, and Triton 2.51's batcher can leave it waiting up to 0.5 s while the "
        "model is busy",
    )
    cpu_affinity: str = Field(
        "",
        description="The CPUs this worker and its pool run on, as a Linux CPU list (0-3,8); empty: wherever the "
        "OS puts them. `podium up` gives each worker its own share of the machine's (PODIUM_UP_PIN_WORKERS): "
        "decoding threads of one process spread over cores that other processes use cost 20-60 % more CPU (docs/performance.md, 00k)",
    )
    triton_shared_memory: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Send pixels to Triton through system shared memory; auto: when PODIUM_TRITON_URL is this "
        "machine (localhost or loopback). A Triton that cannot open the regions gets them over gRPC",
    )
    triton_outage_limit_s: float = Field(
        DEFAULT_TRITON_OUTAGE_LIMIT_S,
        gt=0,
        description="A Triton outage shorter than this fails no image; beyond it, images fail saying so",
    )
    results_sink_outage_limit_s: float = Field(
        600.0,
        gt=0,
        description="A results sink (PODIUM_RESULTS_URL of the gateway) that refuses a chunk's file this long "
        "fails the job, saying why; shorter outages only delay the chunk",
    )
    chunk_time_s: float = Field(900.0, gt=0, description="The longest one chunk may take while Triton answers")
    chunk_lease_s: float = Field(60.0, ge=5, description="A chunk whose worker stops renewing this long is free")
    result_cache: bool = Field(True, description="Answer byte-identical images (within and across jobs) once")
    result_cache_scope: Literal["owner", "shared"] = Field(
        "owner",
        description="owner: answers reused only within one API key's jobs; shared: across keys (one key can then "
        "learn whether another classified the same bytes)",
    )
    result_cache_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="How long a cached answer is kept")
    result_cache_max_entries: int = Field(
        200_000, ge=1, description="Cached answers kept at most (~60-100 bytes each in Redis); the newest half always"
    )

    @field_validator("cpu_affinity")
    @classmethod
    def _cpu_list(cls, text: str) -> str:
        try:
            return format_cpu_list(parse_cpu_list(text)) if text.strip() else ""
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None  # what pydantic reports as the field's error

    @property
    def task_time_limit_s(self) -> float:
        """Celery kills a task (as a hung worker) after this; longer than any wait for Triton."""
        return self.triton_outage_limit_s + self.chunk_time_s
