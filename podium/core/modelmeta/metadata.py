"""What an exported model says about itself: classes, preprocessing, provenance.

The export writes this as ``podium.json`` in the model version folder and, as the same
JSON, into the ``podium_metadata`` parameter of the model's config.pbtxt, so that every
Triton client (worker, gateway) reads it from Triton without access to the files.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from podium.core.imaging import PreprocessSpec
from podium.core.modelmeta.networks import DEFAULT_ARCHITECTURE

# The name models are exported and served under unless told otherwise.
DEFAULT_MODEL_NAME = "resnet50_sports"
METADATA_PARAMETER = "podium_metadata"
METADATA_FILENAME = "podium.json"
INPUT_NAME = "images"
# The gpu-dali ensemble's input: a batch of encoded image files, uint8 [N, bytes].
ENCODED_INPUT_NAME = "encoded"
PIXELS_INPUT = "pixels"  # ModelMetadata.input_format: uint8 NHWC pixels, decoded by the client
ENCODED_INPUT = "encoded"  # ... or the file's bytes, decoded by the server (gpu-dali)
OUTPUT_NAME = "probabilities"
# The Grad-CAM map of the top-1 class, [N, crop/32, crop/32] float32 (export.activation_map).
CAM_NAME = "cam"
# Most networks' last feature maps are the input's size divided by this (older exports' grid).
CAM_STRIDE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocessing(BaseModel):
    """The transform a client applies before sending uint8 NHWC pixels."""

    resize: int = Field(256, ge=1, le=4096)
    crop: int = Field(224, ge=16, le=4096)
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    # Grey first (torchvision's Grayscale), sent in all three channels; a network whose first
    # convolution takes one channel reads one of them.
    grayscale: bool = False
    layout: str = "NHWC"
    dtype: str = "uint8"
    # Applied inside the model graph, recorded for reference.
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(
            resize=self.resize, crop=self.crop, interpolation=self.interpolation, grayscale=self.grayscale
        )


class ModelMetadata(BaseModel):
    """Metadata of one exported model version."""

    format_version: int = 1
    model_name: str
    target: str
    classes: list[str]
    # The torchvision network (export.architectures); exports before 2026-12 were all ResNet50.
    architecture: str = DEFAULT_ARCHITECTURE
    # Numeric precision of the served model: "fp32", "int8" (cpu-int8) or "fp16" (TensorRT).
    precision: str = "fp32"
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    input_name: str = INPUT_NAME
    # "pixels": the client decodes and sends the crop; "encoded": it sends the file's bytes.
    input_format: str = PIXELS_INPUT
    output_name: str = OUTPUT_NAME
    # The output carrying podium.core.modelmeta.fingerprint of the classified pixels ("": the model has none).
    fingerprint_name: str = ""
    # The input of one int64 tag per image that the model echoes in ``row_tag_echo_name``:
    # the cheap ownership check of versions exported since 2026-12 ("": fingerprint only).
    row_tag_name: str = ""
    row_tag_echo_name: str = ""
    # The output carrying the top-1 class's activation map ("": exported before maps existed).
    cam_name: str = ""
    # The map's side in cells (the last feature maps'); 0: crop // CAM_STRIDE (older exports).
    cam_side: int = 0
    checkpoint_sha256: str | None = None
    untrained: bool = False
    head: str = ""
    exported_at: str = ""
    exporter: dict[str, str] = Field(default_factory=dict)

    @property
    def cam_grid(self) -> tuple[int, int]:
        side = self.cam_side or self.preprocessing.crop // CAM_STRIDE
        return side, side

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        return cls.model_validate(json.loads(text))
