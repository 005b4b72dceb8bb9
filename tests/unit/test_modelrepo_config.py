"""config.pbtxt: generated from Triton's protobuf and compared with a golden file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from podium.core.errors import InvalidArgument
from podium.core.modelmeta import METADATA_PARAMETER, ModelMetadata
from podium.stores.modelrepo.config import build_model_config, render_model_config
from podium.stores.modelrepo.targets import CPU_TARGET, TARGETS, resolve_target

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cpu_config.pbtxt"
# Set to rewrite the golden file after an intended change; review the diff before committing.
UPDATE_ENV = "PODIUM_UPDATE_GOLDEN"


def golden_metadata() -> ModelMetadata:
    return ModelMetadata(
        model_name="golden_model",
        target="cpu",
        classes=["air hockey", "archery", "bmx"],
        checkpoint_sha256="0" * 64,
        head="Linear(2048, 3)",
        exported_at="2025-01-01T00:00:00+00:00",
        exporter={"torch": "2.14.1", "onnx": "1.23.2", "opset": "17"},
        fingerprint_name="fingerprint",  # as the export sets them for the Python-backend targets
        row_tag_name="row_tag",
        row_tag_echo_name="row_tag_echo",
        cam_name="cam",  # every export since activation maps exist
    )


def test_cpu_config_matches_golden_file():
    text = render_model_config(build_model_config(golden_metadata(), CPU_TARGET, max_batch_size=32))
    if os.environ.get(UPDATE_ENV):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), f"config changed; rerun with {UPDATE_ENV}=1 if intended"


def test_golden_file_parses_into_the_model_config_triton_expects():
    config = text_format.Parse(GOLDEN.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())
    assert config.name == "golden_model"
    assert config.backend == "python"
    assert config.max_batch_size == 32
    images, tags = config.input
    assert (images.name, images.data_type, list(images.dims)) == ("images", model_config_pb2.TYPE_UINT8, [224, 224, 3])
    assert (tags.name, tags.data_type, list(tags.dims), tags.optional) == (
        "row_tag",
        model_config_pb2.TYPE_INT64,
        [1],
        True,
    )
    probabilities, cam, fingerprinted, echoed = config.output
    assert (echoed.name, echoed.data_type, list(echoed.dims)) == ("row_tag_echo", model_config_pb2.TYPE_INT64, [1])
    assert (cam.name, cam.data_type, list(cam.dims)) == ("cam", model_config_pb2.TYPE_FP32, [7, 7])
    assert (fingerprinted.name, fingerprinted.data_type, list(fingerprinted.dims)) == (
        "fingerprint",
        model_config_pb2.TYPE_INT64,
        [4],
    )
    assert probabilities.name == "probabilities"
    assert probabilities.data_type == model_config_pb2.TYPE_FP32
    assert list(probabilities.dims) == [3]
    assert probabilities.label_filename == "labels.txt"
    # No dynamic batcher on the CPU: Triton 2.51's batcher thread misses a freed instance's
    # wake-up and leaves a queued request for its 500 ms idle wait (docs/performance.md, 00k).
    assert not config.HasField("dynamic_batching")
    (group,) = config.instance_group
    assert (group.kind, group.count) == (model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)
    assert config.parameters["onnx_intra_op_threads"].string_value == "0"
    metadata = ModelMetadata.model_validate(json.loads(config.parameters[METADATA_PARAMETER].string_value))
    assert metadata == golden_metadata()


@pytest.mark.parametrize("maximum", [1, 4, 20, 64])
def test_no_target_asks_for_preferred_batch_sizes(maximum: int):
    """With preferred sizes, Triton 2.51's batcher left a request in its queue for its 500 ms
    idle wait when the queue fell short of the next preferred size (docs/performance.md, 00i)."""
    for name in TARGETS:
        config = build_model_config(golden_metadata(), resolve_target(name), max_batch_size=maximum)
        assert config.max_batch_size == maximum
        assert list(config.dynamic_batching.preferred_batch_size) == []


@pytest.mark.parametrize("name", TARGETS)
def test_only_gpu_targets_run_the_dynamic_batcher(name: str):
    """A GPU batches many workers' requests; on the CPU each worker sends whole batches and
    the batcher only adds its lost-wake-up stalls (docs/performance.md, 00k)."""
    target = resolve_target(name)
    config = build_model_config(golden_metadata(), target)
    on_gpu = target.instance_kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert config.HasField("dynamic_batching") == on_gpu
    if on_gpu:
        policy = config.dynamic_batching.default_queue_policy
        assert policy.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
        assert policy.max_queue_size > 0


def test_crop_size_and_class_count_come_from_metadata():
    metadata = golden_metadata().model_copy(update={"classes": ["a", "b"]})
    metadata.preprocessing.crop = 192
    config = build_model_config(metadata, CPU_TARGET)
    assert list(config.input[0].dims) == [192, 192, 3]
    assert list(config.output[0].dims) == [2]


def test_zero_batch_size_is_refused():
    with pytest.raises(InvalidArgument, match="at least 1"):
        build_model_config(golden_metadata(), CPU_TARGET, max_batch_size=0)
