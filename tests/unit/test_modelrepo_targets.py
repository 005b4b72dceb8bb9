"""Configs of the NGC-image targets (gpu, cpu-ort, gpu-ort): golden files, Triton's protobuf,
and the engine build settings the GPU config takes its batch size from (fast)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from pydantic import ValidationError
from tritonclient.grpc import model_config_pb2

from podium.stores.modelrepo.config import build_model_config, parse_model_config, render_model_config
from podium.stores.modelrepo.recipe import EngineSettings, recipe_from_settings
from podium.stores.modelrepo.targets import (
    CPU_ORT_TARGET,
    CPU_TARGET,
    GPU_ORT_TARGET,
    GPU_TARGET,
    TARGETS,
    resolve_target,
)
from tests.unit.test_modelrepo_config import UPDATE_ENV, golden_metadata

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU
KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU
CASES = {
    "gpu_config.pbtxt": (GPU_TARGET, "fp16", 64),
    "cpu_ort_config.pbtxt": (CPU_ORT_TARGET, "fp32", 32),
    "gpu_ort_config.pbtxt": (GPU_ORT_TARGET, "fp16", 64),
}


def rendered(golden: str) -> str:
    target, precision, max_batch_size = CASES[golden]
    metadata = golden_metadata().model_copy(
        update={
            "target": target.name,
            "precision": precision,
            "fingerprint_name": "fingerprint" if target.returns_fingerprint else "",
            "row_tag_name": "row_tag" if target.returns_fingerprint else "",
            "row_tag_echo_name": "row_tag_echo" if target.returns_fingerprint else "",
        }
    )
    return render_model_config(build_model_config(metadata, target, max_batch_size))


@pytest.mark.parametrize("golden", sorted(CASES))
def test_config_matches_golden_file(golden: str):
    text = rendered(golden)
    if os.environ.get(UPDATE_ENV):
        (GOLDEN / golden).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / golden).read_text(encoding="utf-8"), f"rerun with {UPDATE_ENV}=1 if intended"


def read_golden(name: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((GOLDEN / name).read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def test_gpu_golden_is_a_tensorrt_plan_config_triton_accepts():
    config = read_golden("gpu_config.pbtxt")
    assert (config.platform, config.backend) == ("tensorrt_plan", "")
    assert config.max_batch_size >= 64
    (images,) = config.input
    assert (images.name, images.data_type, list(images.dims)) == ("images", model_config_pb2.TYPE_UINT8, [224, 224, 3])
    # No fingerprint (the engine is not Podium's Python code); the map is one of the engine's outputs.
    probabilities, cam = config.output
    assert (probabilities.data_type, probabilities.label_filename) == (model_config_pb2.TYPE_FP32, "labels.txt")
    assert (cam.name, list(cam.dims)) == ("cam", [7, 7])
    (group,) = config.instance_group
    assert (group.kind, group.count) == (KIND_GPU, 2)
    # Triton's guidance: no preferred sizes for a single-profile engine; a small delay.
    assert list(config.dynamic_batching.preferred_batch_size) == []
    assert 0 < config.dynamic_batching.max_queue_delay_microseconds <= 1000
    assert [w.batch_size for w in config.model_warmup] == [1, config.max_batch_size]
    for warmup in config.model_warmup:
        sample = warmup.inputs["images"]
        assert (sample.data_type, list(sample.dims), sample.random_data) == (
            model_config_pb2.TYPE_UINT8,
            [224, 224, 3],
            True,
        )
    assert '"precision":"fp16"' in config.parameters["podium_metadata"].string_value


def test_ort_goldens_use_the_onnxruntime_platform():
    cpu, gpu = read_golden("cpu_ort_config.pbtxt"), read_golden("gpu_ort_config.pbtxt")
    assert cpu.platform == gpu.platform == "onnxruntime_onnx"
    assert (cpu.instance_group[0].kind, gpu.instance_group[0].kind) == (KIND_CPU, KIND_GPU)
    assert not cpu.optimization.execution_accelerators.gpu_execution_accelerator
    (accelerator,) = gpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_profile_max_shapes"] == "images:64x224x224x3"
    assert accelerator.parameters["trt_engine_cache_enable"] == "1"


def test_configs_round_trip_through_the_protobuf():
    for name in (*CASES, "cpu_config.pbtxt"):
        text = (GOLDEN / name).read_text(encoding="utf-8")
        assert render_model_config(parse_model_config(text)) == text


def test_every_target_resolves_and_sets_exactly_one_of_backend_and_platform():
    for name in TARGETS:
        target = resolve_target(name)
        assert bool(target.backend) != bool(target.platform), name
    assert CPU_TARGET.backend == "python"


def test_engine_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PODIUM_ENGINE_MAX_BATCH_SIZE", "128")
    monkeypatch.setenv("PODIUM_ENGINE_OPT_BATCH_SIZE", "64")
    monkeypatch.setenv("PODIUM_ENGINE_WORKSPACE_MIB", "2048")
    monkeypatch.setenv("PODIUM_ENGINE_CACHE_DIR", str(tmp_path))
    settings = EngineSettings()
    assert (settings.max_batch_size, settings.opt_batch_size, settings.cache_dir) == (128, 64, tmp_path)
    recipe = recipe_from_settings(settings, onnx_sha256="ab" * 32, crop=224, check_images=["a.jpg"])
    assert recipe.shapes() == ((1, 224, 224, 3), (64, 224, 224, 3), (128, 224, 224, 3))
    assert recipe.workspace_bytes == 2048 << 20
    assert recipe.min_top1_agreement == 0.995
    config = build_model_config(golden_metadata(), GPU_TARGET, settings.max_batch_size)
    assert config.max_batch_size == 128 and config.model_warmup[-1].batch_size == 128


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PODIUM_ENGINE_MAX_BATCH_SIZE": "32"}, "greater than or equal to 64"),
        ({"PODIUM_ENGINE_OPT_BATCH_SIZE": "100"}, "exceeds max_batch_size"),
        ({"PODIUM_ENGINE_MIN_TOP1_AGREEMENT": "1.5"}, "less than or equal to 1"),
    ],
)
def test_engine_settings_refuse_impossible_profiles(monkeypatch: pytest.MonkeyPatch, variables: dict, message: str):
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        EngineSettings()


def test_recipe_digest_changes_with_what_changes_the_engine():
    settings = EngineSettings()
    base = recipe_from_settings(settings, onnx_sha256="ab" * 32, crop=224, check_images=["a.jpg"])
    assert base.digest() == base.model_copy(update={"check_images": ["b.jpg"], "min_top1_agreement": 0.9}).digest()
    for change in ({"opt_batch_size": 16}, {"max_batch_size": 128}, {"precision": "fp32"}, {"onnx_sha256": "cd" * 32}):
        assert base.model_copy(update=change).digest() != base.digest(), change
