"""The Python-backend model.py, run outside Triton against a stand-in for pb_utils."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import json_format

from export.activation_map import ExplainingModel
from export.torch2onnx import torch2onnx
from podium.core.modelmeta import (
    CAM_NAME,
    FINGERPRINT_NAME,
    FINGERPRINT_SIZE,
    INPUT_NAME,
    OUTPUT_NAME,
    ROW_TAG_ECHO_NAME,
    ROW_TAG_NAME,
    ModelMetadata,
    fingerprint,
)
from podium.stores.modelrepo import layout, targets
from podium.stores.modelrepo.config import build_model_config
from tests.support.tiny_resnet import SIZE, tiny_resnet

CLASSES = ["a", "b", "c"]


@dataclass
class FakeTensor:
    name: str
    array: np.ndarray

    def as_numpy(self) -> np.ndarray:
        return self.array


@dataclass
class FakeRequest:
    images: np.ndarray
    outputs: tuple[str, ...] = (OUTPUT_NAME, FINGERPRINT_NAME)  # what a worker before row tags asks for
    tags: np.ndarray | None = None  # int64 [N, 1]: what a worker since row tags sends

    def tensor(self, name: str) -> FakeTensor | None:
        if name == ROW_TAG_NAME:
            return None if self.tags is None else FakeTensor(name, self.tags)
        return FakeTensor(name, self.images) if name == INPUT_NAME else None

    def requested_output_names(self) -> list[str]:
        return list(self.outputs)


@dataclass
class FakeResponse:
    output_tensors: list = field(default_factory=list)
    error: object = None


class FakeTritonError:
    def __init__(self, message: str) -> None:
        self.message = message


class FakeLogger:
    """pb_utils.Logger: what the model wrote to Triton's log."""

    warnings: ClassVar[list[str]] = []

    @classmethod
    def log_warn(cls, message: str) -> None:
        cls.warnings.append(message)


def fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Logger = type("Logger", (FakeLogger,), {"warnings": []})
    module.Tensor = FakeTensor
    module.InferenceResponse = FakeResponse
    module.TritonError = FakeTritonError
    module.get_input_tensor_by_name = lambda request, name: request.tensor(name)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with a tiny ResNet exported as `podium export` does (with its map) as version 1."""
    root = tmp_path_factory.mktemp("tiny_model")
    (root / "1").mkdir()
    model = ExplainingModel(tiny_resnet(len(CLASSES)))
    torch2onnx(model, root / "1" / "model.onnx", input_size=SIZE, output_names=(OUTPUT_NAME, CAM_NAME))
    return root


def load_backend_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """triton_python_model.py loaded as Triton's stub loads it, over a fake pb_utils."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb_utils())
    spec = importlib.util.spec_from_file_location("podium_triton_model_under_test", targets.PYTHON_MODEL_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def backend_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return load_backend_module(monkeypatch)


def triton_args(model_dir: Path, threads: str = "0", spinning: str | None = None) -> dict[str, str]:
    """What Triton passes to initialize(): the config as JSON, the model folder and version."""
    metadata = ModelMetadata(model_name="tiny", target="cpu", classes=CLASSES)
    config = build_model_config(metadata, targets.CPU_TARGET)
    config.parameters[targets.ONNX_THREADS_PARAMETER].string_value = threads
    if spinning is None:
        del config.parameters[targets.ONNX_SPINNING_PARAMETER]  # a config written before the parameter
    else:
        config.parameters[targets.ONNX_SPINNING_PARAMETER].string_value = spinning
    as_json = json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True))
    return {"model_config": as_json, "model_repository": str(model_dir), "model_version": "1"}


def test_names_match_the_rest_of_podium(backend_module: types.ModuleType):
    assert backend_module.INPUT_NAME == INPUT_NAME
    assert backend_module.OUTPUT_NAME == OUTPUT_NAME
    assert backend_module.CAM_NAME == CAM_NAME
    assert backend_module.THREADS_PARAMETER == targets.ONNX_THREADS_PARAMETER
    assert backend_module.SPINNING_PARAMETER == targets.ONNX_SPINNING_PARAMETER
    assert backend_module.ONNX_FILENAME == layout.ONNX_FILENAME


def test_threads_parameter_reaches_the_session(backend_module: types.ModuleType, model_dir: Path):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir, threads="2"))
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert model.session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize(("spinning", "entry"), [(None, "0"), ("0", "0"), ("1", "1"), ("yes", "0")])
def test_spinning_is_off_unless_the_config_turns_it_on(
    backend_module: types.ModuleType, model_dir: Path, spinning: str | None, entry: str
):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir, spinning=spinning))
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry


def test_cpu_targets_write_spinning_off():
    for target in (targets.CPU_TARGET, targets.CPU_INT8_TARGET):
        assert target.parameters[targets.ONNX_SPINNING_PARAMETER] == "0"


def test_requests_are_batched_and_split_back(backend_module: types.ModuleType, model_dir: Path):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir))
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8) for n in (1, 3, 2)]
    responses = model.execute([FakeRequest(b) for b in batches])
    reference = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert len(responses) == 3
    for batch, response in zip(batches, responses, strict=True):
        assert response.error is None
        tensor, fingerprinted = response.output_tensors
        assert tensor.name == OUTPUT_NAME
        assert tensor.array.flags["C_CONTIGUOUS"]
        expected = reference.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        np.testing.assert_allclose(tensor.array, expected, atol=1e-6)
        # Each response carries the fingerprint of its own request's pixels.
        assert fingerprinted.name == FINGERPRINT_NAME
        assert np.array_equal(fingerprinted.array, fingerprint(batch))


def test_maps_are_computed_and_sent_only_for_the_requests_that_ask(
    backend_module: types.ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir))
    rng = np.random.default_rng(2)
    plain, explained = (rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8) for n in (2, 3))
    asked = (OUTPUT_NAME, CAM_NAME, FINGERPRINT_NAME)
    runs: list[list[str]] = []
    real_run = model.session.run
    monkeypatch.setattr(
        model, "session", types.SimpleNamespace(run=lambda names, feed: runs.append(names) or real_run(names, feed))
    )
    first, second = model.execute([FakeRequest(plain), FakeRequest(explained, outputs=asked)])
    assert runs == [[OUTPUT_NAME, CAM_NAME]]  # one run for the batch, maps included
    assert [t.name for t in first.output_tensors] == [OUTPUT_NAME, FINGERPRINT_NAME]
    assert [t.name for t in second.output_tensors] == [OUTPUT_NAME, CAM_NAME, FINGERPRINT_NAME]
    reference = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    expected_maps = reference.run([CAM_NAME], {INPUT_NAME: explained})[0]
    np.testing.assert_allclose(second.output_tensors[1].array, expected_maps, atol=1e-6)
    assert second.output_tensors[1].array.shape == (3, SIZE // 32, SIZE // 32)
    runs.clear()
    model.execute([FakeRequest(plain), FakeRequest(plain)])
    assert runs == [[OUTPUT_NAME]]  # nobody asked: no map is computed


def test_the_fingerprint_is_the_one_clients_check(backend_module: types.ModuleType):
    assert (backend_module.FINGERPRINT_NAME, backend_module.FINGERPRINT_SIZE) == (FINGERPRINT_NAME, FINGERPRINT_SIZE)
    rng = np.random.default_rng(1)
    for shape in ((1, 16, 16, 3), (5, 224, 224, 3)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(backend_module.fingerprint(pixels), fingerprint(pixels))
    one, other = rng.integers(0, 256, (2, 1, 224, 224, 3), dtype=np.uint8)
    assert not np.array_equal(fingerprint(one), fingerprint(np.flip(one, axis=2)))  # a mirror image differs
    assert not np.array_equal(fingerprint(one), fingerprint(other))


def test_failure_answers_every_request_with_an_error(backend_module: types.ModuleType, model_dir: Path):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir))
    good = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    mismatched = np.zeros((1, SIZE + 1, SIZE, 3), np.uint8)
    responses = model.execute([FakeRequest(good), FakeRequest(mismatched)])
    assert len(responses) == 2
    for response in responses:
        assert response.output_tensors == []
        assert "onnxruntime inference failed" in response.error.message
    model.finalize()


def test_int8_model_warns_once_at_load_on_unchecked_kernels(
    backend_module: types.ModuleType, model_dir: Path, tmp_path: Path
):
    """A fidelity.json whose checks cover no arithmetic this CPU has: one warning in Triton's log."""
    (tmp_path / "1").mkdir()
    shutil.copy(model_dir / "1" / "model.onnx", tmp_path / "1" / "model.onnx")
    checks = [{"kernel_path": "avx9", "arithmetic": "none-such"}]
    (tmp_path / "1" / "fidelity.json").write_text(json.dumps({"kernel_checks": checks}))
    logger = backend_module.pb_utils.Logger
    backend_module.TritonPythonModel().initialize(triton_args(model_dir))  # no fidelity.json: silent
    assert logger.warnings == []
    backend_module.TritonPythonModel().initialize(triton_args(tmp_path))
    assert len(logger.warnings) == 1
    assert "its export did not check it on (checked: avx9 (none-such))" in logger.warnings[0]


def test_row_tags_are_echoed_and_the_fingerprint_is_made_only_when_asked(
    backend_module: types.ModuleType, model_dir: Path
):
    model = backend_module.TritonPythonModel()
    model.initialize(triton_args(model_dir))
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8) for n in (2, 1)]
    tags = [np.array([[7], [8]], dtype=np.int64), np.array([[9]], dtype=np.int64)]
    requests = [FakeRequest(b, (OUTPUT_NAME, ROW_TAG_ECHO_NAME), t) for b, t in zip(batches, tags, strict=True)]
    for response, sent in zip(model.execute(requests), tags, strict=True):
        probabilities, echoed = response.output_tensors  # no fingerprint: nobody asked for it
        assert (probabilities.name, echoed.name) == (OUTPUT_NAME, ROW_TAG_ECHO_NAME)
        assert np.array_equal(echoed.array, sent)
    # A worker from before row tags, beside one since, in the same batch: each gets its own check.
    old, new = model.execute(
        [FakeRequest(batches[0]), FakeRequest(batches[1], (OUTPUT_NAME, ROW_TAG_ECHO_NAME), tags[1])]
    )
    assert [t.name for t in old.output_tensors] == [OUTPUT_NAME, FINGERPRINT_NAME]
    assert np.array_equal(old.output_tensors[1].array, fingerprint(batches[0]))
    assert [t.name for t in new.output_tensors] == [OUTPUT_NAME, ROW_TAG_ECHO_NAME]


def test_row_tag_names_match_the_rest_of_podium(backend_module: types.ModuleType):
    assert (backend_module.ROW_TAG_NAME, backend_module.ROW_TAG_ECHO_NAME) == (ROW_TAG_NAME, ROW_TAG_ECHO_NAME)
