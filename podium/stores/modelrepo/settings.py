"""EngineSettings: how TensorRT engines are built, from ``PODIUM_ENGINE_*`` variables
(docker-compose and k8s set them) or the command line; and the TensorRT the target Triton loads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# GPUs only pay off with large batches; Triton's dynamic batcher forms them only up to this.
MIN_GPU_MAX_BATCH_SIZE = 64
DEFAULT_MAX_BATCH_SIZE = 64
# Kernels are tuned for the opt shape: with two instances and single-image requests from
# many workers, the batches Triton forms mostly lie between half the maximum and the maximum.
DEFAULT_OPT_BATCH_SIZE = 32
DEFAULT_WORKSPACE_MIB = 4096
DEFAULT_MIN_TOP1_AGREEMENT = 0.995
DEFAULT_CACHE_DIR = Path("~/.cache/podium/engines")
# The NGC release Podium's images use, and its TensorRT: a plan loads only in the TensorRT
# that built it, so the builder must be exactly this one (the tensorrt:25.06-py3 image; pip
# tensorrt-cu12==10.11.0.33 elsewhere). Another Triton release names its own here.
NGC_RELEASE = "25.06"
TENSORRT_VERSION = "10.11.0.33"


class EngineSettings(BaseSettings):
    """TensorRT build settings, from ``PODIUM_ENGINE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_ENGINE_", extra="ignore")

    max_batch_size: int = Field(
        DEFAULT_MAX_BATCH_SIZE, ge=MIN_GPU_MAX_BATCH_SIZE, description="Profile max = Triton's max_batch_size"
    )
    opt_batch_size: int = Field(DEFAULT_OPT_BATCH_SIZE, ge=1, description="Batch size the kernels are tuned for")
    workspace_mib: int = Field(DEFAULT_WORKSPACE_MIB, ge=64, description="TensorRT workspace memory pool limit")
    min_top1_agreement: float = Field(DEFAULT_MIN_TOP1_AGREEMENT, gt=0, le=1, description="Engine vs ONNX Runtime FP32")
    cache_dir: Path = Field(DEFAULT_CACHE_DIR, description="Engines and timing caches, reused across builds")
    tensorrt_version: str = Field(
        TENSORRT_VERSION, description=f"The exact TensorRT the target Triton loads (NGC {NGC_RELEASE}'s by default)"
    )

    @model_validator(mode="after")
    def _opt_within_max(self) -> EngineSettings:
        if self.opt_batch_size > self.max_batch_size:
            raise ValueError(f"opt_batch_size {self.opt_batch_size} exceeds max_batch_size {self.max_batch_size}")
        return self
