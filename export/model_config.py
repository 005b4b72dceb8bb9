"""Triton ``config.pbtxt`` built from Triton's model-config protobuf, never from templates."""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from export.errors import ExportError
from export.targets import Target
from inference.metadata import INPUT_NAME, METADATA_PARAMETER, OUTPUT_NAME, ModelMetadata

CONFIG_FILENAME = "config.pbtxt"
LABELS_FILENAME = "labels.txt"
DEFAULT_MAX_BATCH_SIZE = 32
PREFERRED_BATCH_SIZES = (8, 16, 32)
# How long Triton holds a request to merge it with others. One CPU image takes ~30 ms, so
# 2 ms costs a lone request little while letting concurrent workers' requests share a batch.
MAX_QUEUE_DELAY_MICROSECONDS = 2000
INSTANCE_COUNT = 1
COLOUR_CHANNELS = 3


def build_model_config(
    metadata: ModelMetadata, target: Target, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> model_config_pb2.ModelConfig:
    """The model's Triton configuration; the metadata travels in a parameter as compact JSON."""
    if max_batch_size < 1:
        raise ExportError(f"max batch size must be at least 1, got {max_batch_size}")
    crop = metadata.preprocessing.crop
    config = model_config_pb2.ModelConfig(
        name=metadata.model_name, backend=target.backend, max_batch_size=max_batch_size
    )
    config.input.add(name=INPUT_NAME, data_type=model_config_pb2.TYPE_UINT8, dims=[crop, crop, COLOUR_CHANNELS])
    config.output.add(
        name=OUTPUT_NAME,
        data_type=model_config_pb2.TYPE_FP32,
        dims=[len(metadata.classes)],
        label_filename=LABELS_FILENAME,
    )
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(preferred_batch_sizes(max_batch_size))
    batching.max_queue_delay_microseconds = MAX_QUEUE_DELAY_MICROSECONDS
    config.instance_group.add(kind=target.instance_kind, count=INSTANCE_COUNT)
    config.parameters[METADATA_PARAMETER].string_value = metadata.model_dump_json()
    for key, value in target.parameters.items():
        config.parameters[key].string_value = value
    return config


def preferred_batch_sizes(max_batch_size: int) -> list[int]:
    """PREFERRED_BATCH_SIZES up to the maximum, or just the maximum when it is smaller."""
    return [size for size in PREFERRED_BATCH_SIZES if size <= max_batch_size] or [max_batch_size]


def render_model_config(config: model_config_pb2.ModelConfig) -> str:
    """Protobuf text format, as Triton reads it (map entries come out sorted by key)."""
    return text_format.MessageToString(config)


def labels_text(classes: list[str]) -> str:
    """Contents of labels.txt: one class per line, line i naming output index i."""
    return "".join(f"{name}\n" for name in classes)
