"""How the TensorRT engine of a GPU model version is to be built: settings and build.json.

``podium export --target gpu`` writes the recipe (``build.json``) beside the ONNX model;
``podium build-engine`` follows it on the serving GPU. Settings come from ``PODIUM_ENGINE_*``
variables (docker-compose and k8s set them) or the command line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.core.modelmeta import INPUT_NAME
from podium.stores.modelrepo.layout import CHECK_IMAGES_FILENAME, RECIPE_FILENAME

FP16 = "fp16"
MIB = 1 << 20
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
# Bumped whenever podium/engine/onnx2trt.py changes a builder call (flags, profiles, tactics): an
# engine built by other builder options is not reused from the cache.
BUILDER_REVISION = 1
COLOUR_CHANNELS = 3


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


class BuildRecipe(BaseModel):
    """build.json: everything that decides the engine, plus how to check it."""

    format_version: int = 1
    onnx_sha256: str
    input_name: str = INPUT_NAME
    crop: int
    min_batch_size: int = 1
    opt_batch_size: int
    max_batch_size: int
    precision: str = FP16
    workspace_bytes: int
    builder_revision: int = BUILDER_REVISION
    min_top1_agreement: float
    check_images: list[str] = Field(default_factory=list, description=f"names of the rows of {CHECK_IMAGES_FILENAME}")

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The optimisation profile of the input: (min, opt, max) NHWC shapes."""
        return tuple(  # type: ignore[return-value]
            (batch, self.crop, self.crop, COLOUR_CHANNELS)
            for batch in (self.min_batch_size, self.opt_batch_size, self.max_batch_size)
        )

    def digest(self) -> str:
        """SHA-256 of the fields that change the built engine (not the check settings)."""
        decisive = self.model_dump(
            include={
                "onnx_sha256",
                "input_name",
                "crop",
                "min_batch_size",
                "opt_batch_size",
                "max_batch_size",
                "precision",
                "workspace_bytes",
                "builder_revision",
            }
        )
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()

    @classmethod
    def read(cls, version_dir: Path) -> BuildRecipe:
        return cls.model_validate_json((Path(version_dir) / RECIPE_FILENAME).read_text(encoding="utf-8"))


def recipe_from_settings(
    settings: EngineSettings, *, onnx_sha256: str, crop: int, check_images: list[str]
) -> BuildRecipe:
    return BuildRecipe(
        onnx_sha256=onnx_sha256,
        crop=crop,
        opt_batch_size=settings.opt_batch_size,
        max_batch_size=settings.max_batch_size,
        workspace_bytes=settings.workspace_mib * MIB,
        min_top1_agreement=settings.min_top1_agreement,
        check_images=check_images,
    )
