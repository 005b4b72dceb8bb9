"""Triton ``config.pbtxt`` built from Triton's model-config protobuf, never from templates."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from podium.core.errors import InvalidArgument
from podium.core.modelmeta import FINGERPRINT_SIZE, INPUT_NAME, METADATA_PARAMETER, OUTPUT_NAME, ModelMetadata
from podium.stores.modelrepo.errors import ModelRepositoryError
from podium.stores.modelrepo.layout import CONFIG_FILENAME, LABELS_FILENAME
from podium.stores.modelrepo.targets import Target

DEFAULT_MAX_BATCH_SIZE = 32
COLOUR_CHANNELS = 3
TENSORRT_ACCELERATOR = "tensorrt"
WARMUP_MAX = "max"


def build_model_config(
    metadata: ModelMetadata, target: Target, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> model_config_pb2.ModelConfig:
    """The model's Triton configuration; the metadata travels in a parameter as compact JSON."""
    if max_batch_size < 1:
        raise InvalidArgument(f"max batch size must be at least 1, got {max_batch_size}")
    crop = metadata.preprocessing.crop
    config = model_config_pb2.ModelConfig(
        name=metadata.model_name, backend=target.backend, platform=target.platform, max_batch_size=max_batch_size
    )
    dims = [crop, crop, COLOUR_CHANNELS]
    config.input.add(name=INPUT_NAME, data_type=model_config_pb2.TYPE_UINT8, dims=dims)
    config.output.add(
        name=OUTPUT_NAME,
        data_type=model_config_pb2.TYPE_FP32,
        dims=[len(metadata.classes)],
        label_filename=LABELS_FILENAME,
    )
    if metadata.cam_name:
        config.output.add(name=metadata.cam_name, data_type=model_config_pb2.TYPE_FP32, dims=list(metadata.cam_grid))
    if metadata.fingerprint_name:
        config.output.add(
            name=metadata.fingerprint_name, data_type=model_config_pb2.TYPE_INT64, dims=[FINGERPRINT_SIZE]
        )
    if metadata.row_tag_name:
        # Optional: a client that predates row tags sends pixels alone and asks for the fingerprint.
        config.input.add(name=metadata.row_tag_name, data_type=model_config_pb2.TYPE_INT64, dims=[1], optional=True)
        config.output.add(name=metadata.row_tag_echo_name, data_type=model_config_pb2.TYPE_INT64, dims=[1])
    if target.batching is not None:
        batching = config.dynamic_batching
        batching.max_queue_delay_microseconds = target.batching.max_queue_delay_microseconds
        policy = batching.default_queue_policy
        policy.timeout_action = model_config_pb2.ModelQueuePolicy.REJECT
        policy.default_timeout_microseconds = target.batching.queue_timeout_microseconds
        policy.max_queue_size = target.batching.max_queue_size
    config.instance_group.add(kind=target.instance_kind, count=target.instance_count)
    for size in warmup_batch_sizes(target, max_batch_size):
        warmup = config.model_warmup.add(name=f"random_batch_{size}", batch_size=size)
        # Random pixels, not zeros: a constant image would not exercise real data paths.
        warmup.inputs[INPUT_NAME].CopyFrom(
            model_config_pb2.ModelWarmup.Input(data_type=model_config_pb2.TYPE_UINT8, dims=dims, random_data=True)
        )
    if target.tensorrt_accelerator:
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(
            name=TENSORRT_ACCELERATOR
        )
        accelerator.parameters.update(target.tensorrt_accelerator)
        accelerator.parameters.update(_ort_tensorrt_profile(crop, max_batch_size))
    config.parameters[METADATA_PARAMETER].string_value = metadata.model_dump_json()
    for key, value in target.parameters.items():
        config.parameters[key].string_value = value
    return config


def warmup_batch_sizes(target: Target, max_batch_size: int) -> list[int]:
    """The target's warm-up batch sizes, "max" resolved, duplicates dropped, in order."""
    sizes = [max_batch_size if size == WARMUP_MAX else int(size) for size in target.warmup_batch_sizes]
    return list(dict.fromkeys(min(size, max_batch_size) for size in sizes))


def _ort_tensorrt_profile(crop: int, max_batch_size: int) -> dict[str, str]:
    """ONNX Runtime's TensorRT profile for the dynamic batch axis (min 1, opt = max)."""

    def shape(batch: int) -> str:
        return f"{INPUT_NAME}:{batch}x{crop}x{crop}x{COLOUR_CHANNELS}"

    return {
        "trt_profile_min_shapes": shape(1),
        "trt_profile_opt_shapes": shape(max_batch_size),
        "trt_profile_max_shapes": shape(max_batch_size),
    }


def render_model_config(config: model_config_pb2.ModelConfig) -> str:
    """Protobuf text format, as Triton reads it (map entries come out sorted by key)."""
    return text_format.MessageToString(config)


def parse_model_config(text: str) -> model_config_pb2.ModelConfig:
    """config.pbtxt text -> ModelConfig; ModelRepositoryError when Triton could not parse it either."""
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ModelRepositoryError(f"config.pbtxt is not a valid Triton model config: {exc}") from None


def labels_text(classes: list[str]) -> str:
    """Contents of labels.txt: one class per line, line i naming output index i."""
    return "".join(f"{name}\n" for name in classes)


def read_model_config(model_dir: Path) -> model_config_pb2.ModelConfig:
    """The config.pbtxt of a model folder, parsed; ModelRepositoryError when absent or invalid."""
    path = Path(model_dir) / CONFIG_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelRepositoryError(
            f"cannot read {path} ({exc.strerror}); export the model with `podium export`"
        ) from None
    return parse_model_config(text)
