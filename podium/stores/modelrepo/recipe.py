"""How the TensorRT engine of a GPU model version is to be built: build.json.

``podium export --target gpu`` writes the recipe (``build.json``) beside the ONNX model;
``podium build-engine`` follows it on the serving GPU. Its settings (``EngineSettings``,
``PODIUM_ENGINE_*``) are in ``settings``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field

from podium.core.modelmeta import INPUT_NAME
from podium.stores.modelrepo.layout import CHECK_IMAGES_FILENAME, RECIPE_FILENAME
from podium.stores.modelrepo.settings import NGC_RELEASE, TENSORRT_VERSION, EngineSettings

__all__ = ["NGC_RELEASE", "TENSORRT_VERSION", "BuildRecipe", "EngineSettings", "recipe_from_settings"]

FP16 = "fp16"
MIB = 1 << 20
# Bumped whenever podium/engine/onnx2trt.py changes a builder call (flags, profiles, tactics): an
# engine built by other builder options is not reused from the cache.
BUILDER_REVISION = 1
COLOUR_CHANNELS = 3


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
