"""The gpu-dali target: the DALI model and the ensemble (golden configs, Triton's protobuf),
the pipeline file's arithmetic against torchvision's, and the workers' bytes path (fakes).

DALI itself is not on this machine's package registries: the pipeline runs only on a GPU
host, where docs/export.md's gate (agreement with the Pillow path on 1,000 photos) applies.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms.functional as TF
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2

from podium.core.imaging import Decoder
from podium.core.modelmeta import ModelMetadata, Preprocessing
from podium.stores.inference import classify_bytes
from podium.stores.inference.triton import Inference, TritonError
from podium.stores.modelrepo.config import build_model_config, render_model_config
from podium.stores.modelrepo.gpu_decode import (
    PIPELINE_SOURCE,
    build_dali_config,
    build_ensemble_config,
    encoded_metadata,
    pipeline_source,
    write_gpu_decode_models,
)
from podium.stores.modelrepo.targets import GPU_DALI_TARGET, GPU_TARGET, resolve_target
from tests.unit.test_modelrepo_config import UPDATE_ENV, golden_metadata

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def gpu_metadata() -> ModelMetadata:
    return golden_metadata().model_copy(
        update={
            "target": "gpu-dali",
            "precision": "fp16",
            "fingerprint_name": "",
            "row_tag_name": "",
            "row_tag_echo_name": "",
        }
    )


@pytest.mark.parametrize(
    ("golden", "build"),
    [("gpu_dali_config.pbtxt", build_dali_config), ("gpu_encoded_config.pbtxt", build_ensemble_config)],
)
def test_configs_match_golden_files(golden, build):
    text = render_model_config(build(gpu_metadata(), 64))
    if os.environ.get(UPDATE_ENV):
        (GOLDEN / golden).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / golden).read_text(encoding="utf-8"), f"rerun with {UPDATE_ENV}=1 if intended"


def parsed(name: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((GOLDEN / name).read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def test_the_dali_model_takes_ragged_bytes_and_gives_the_engines_input():
    dali, engine = parsed("gpu_dali_config.pbtxt"), build_model_config(gpu_metadata(), GPU_DALI_TARGET, 64)
    assert (dali.backend, dali.name, dali.max_batch_size) == ("dali", "golden_model_dali", engine.max_batch_size)
    (encoded,) = dali.input
    assert (encoded.data_type, list(encoded.dims), encoded.allow_ragged_batch) == (
        model_config_pb2.TYPE_UINT8,
        [-1],
        True,
    )
    (pixels,) = dali.output
    (images,) = engine.input
    assert (pixels.data_type, list(pixels.dims)) == (images.data_type, list(images.dims))
    assert dali.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_the_ensemble_chains_decoding_into_the_engine():
    ensemble, dali = parsed("gpu_encoded_config.pbtxt"), parsed("gpu_dali_config.pbtxt")
    engine = build_model_config(gpu_metadata(), GPU_DALI_TARGET, 64)
    assert (ensemble.platform, ensemble.name) == ("ensemble", "golden_model_encoded")
    decode, classify = ensemble.ensemble_scheduling.step
    assert decode.model_name == dali.name and classify.model_name == engine.name
    assert dict(decode.input_map) == {ensemble.input[0].name: dali.input[0].name}
    assert set(decode.output_map) == {dali.output[0].name}
    assert dict(classify.input_map) == {engine.input[0].name: decode.output_map[dali.output[0].name]}
    # The ensemble answers what the engine answers, under the same names, with its labels.
    assert [o.name for o in ensemble.output] == [o.name for o in engine.output]
    assert dict(classify.output_map) == {o.name: o.name for o in engine.output}
    assert [list(o.dims) for o in ensemble.output] == [list(o.dims) for o in engine.output]
    metadata = ModelMetadata.model_validate_json(ensemble.parameters["podium_metadata"].string_value)
    assert (metadata.model_name, metadata.input_format, metadata.input_name) == (ensemble.name, "encoded", "encoded")
    assert metadata.classes == gpu_metadata().classes


def test_gpu_dali_is_the_gpu_target_plus_decoding():
    target = resolve_target("gpu-dali")
    assert target.decodes_on_gpu and not GPU_TARGET.decodes_on_gpu
    assert (target.platform, target.needs_engine, target.batching) == (GPU_TARGET.platform, True, GPU_TARGET.batching)


def test_export_writes_both_models_with_the_pipeline_file(tmp_path):
    dali_dir, ensemble_dir = write_gpu_decode_models(tmp_path, gpu_metadata(), 48)
    assert (dali_dir.name, ensemble_dir.name) == ("golden_model_dali", "golden_model_encoded")
    assert (ensemble_dir / "1").is_dir() and (ensemble_dir / "labels.txt").read_text().splitlines()[0] == "air hockey"
    source = (dali_dir / "1" / "dali.py").read_text()
    assert source == pipeline_source(gpu_metadata(), 48)
    assert "MAX_BATCH_SIZE = 48\n" in source and "RESIZE = 256\n" in source and "CROP = 224\n" in source
    assert 'INTERPOLATION = "bilinear"' in source
    write_gpu_decode_models(tmp_path, gpu_metadata(), 48)  # again: brought up to date, not refused
    bicubic = gpu_metadata().model_copy(
        update={"preprocessing": Preprocessing(resize=320, crop=300, interpolation="bicubic")}
    )
    source = pipeline_source(bicubic, 48)
    assert 'INTERPOLATION = "bicubic"' in source and "RESIZE = 320\n" in source and "CROP = 300\n" in source


# --- the pipeline file -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline():
    """dali.py loaded as Python: without DALI only its helpers are defined (nothing is serialized)."""
    spec = importlib.util.spec_from_file_location("podium_dali_pipeline", PIPELINE_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_computes_torchvision_sizes_and_offsets(pipeline):
    rng = random.Random(0)
    sizes = [(224, 224), (256, 256), (257, 300), (225, 1000), (6000, 4000), (4000, 6000), (333, 500)]
    sizes += [(rng.randint(224, 8000), rng.randint(224, 8000)) for _ in range(500)]
    for height, width in sizes:
        image = Image.new("L", (width, height))
        resized = TF.resize(image, 256)  # torchvision's own size rule
        new_h, new_w = pipeline.resized_extent(height, width), pipeline.resized_extent(width, height)
        assert (new_w, new_h) == resized.size, (height, width)
    for extent in range(224, 1200):
        columns = Image.fromarray(np.tile(np.arange(extent, dtype=np.int32), (224, 1)))  # each pixel: its column
        first = int(np.asarray(TF.center_crop(columns, 224))[0, 0])  # torchvision's own offset
        assert pipeline.crop_start(extent) == first, extent


def test_the_pipeline_decodes_on_the_gpu_and_resizes_antialiased():
    calls = {
        node.func.attr: {k.arg: ast.unparse(k.value) for k in node.keywords}
        for node in ast.walk(ast.parse(PIPELINE_SOURCE.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert calls["image"]["device"] == "'mixed'" and calls["image"]["output_type"] == "types.RGB"
    assert calls["resize"]["antialias"] == "True"
    assert calls["resize"]["interp_type"] == (
        "types.INTERP_CUBIC if INTERPOLATION == 'bicubic' else types.INTERP_LINEAR"
    )
    assert calls["external_source"]["name"] == "INPUT_NAME"
    assert "crop_mirror_normalize" not in calls  # the model graph normalises


# --- the workers' bytes path -------------------------------------------------------------


class EncodedClassifier:
    """A fake Triton model that takes encoded files, like gpu-dali's ensemble."""

    def __init__(self, fail: bool = False):
        self.sent: list[bytes] = []
        self.fail = fail

    def metadata(self):
        return encoded_metadata(gpu_metadata())

    def infer(self, pixels, explain=False):
        raise AssertionError("a model that takes encoded files gets no pixels")

    def infer_encoded(self, data, explain=False):
        if self.fail:
            raise TritonError("DALI could not decode the file")
        self.sent.append(data)
        probabilities = np.zeros((1, len(gpu_metadata().classes)), dtype=np.float32)
        probabilities[0, 1] = 1.0
        return Inference(probabilities, None)


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


class NoDecoding(Decoder):
    def model_input(self, data, spec=None):
        raise AssertionError("the worker decoded an image the server decodes")


def test_workers_send_the_files_bytes_and_decode_nothing():
    classifier, data = EncodedClassifier(), jpeg_bytes()
    outcome = classify_bytes(classifier, data, 2, NoDecoding())
    assert classifier.sent == [data]
    assert outcome.predictions[0].label == gpu_metadata().classes[1]


@pytest.mark.parametrize(
    ("data", "reason"), [(b"", "empty"), (b"plain text, no image", "not"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "")]
)
def test_what_is_no_image_never_reaches_the_server(data, reason):
    classifier = EncodedClassifier()
    outcome = classify_bytes(classifier, data, 2, NoDecoding())
    assert outcome.error and reason in outcome.error and classifier.sent == []


def test_a_file_the_server_cannot_decode_fails_alone():
    outcome = classify_bytes(EncodedClassifier(fail=True), jpeg_bytes(), 2, NoDecoding())
    assert outcome.error.startswith("inference failed") and "DALI" in outcome.error


def test_the_pixel_limit_applies_before_the_bytes_are_sent():
    out = io.BytesIO()
    Image.new("L", (4000, 3000)).save(out, "PNG")
    classifier = EncodedClassifier()
    outcome = classify_bytes(classifier, out.getvalue(), 2, NoDecoding(max_pixels=1_000_000))
    assert "more than the limit" in outcome.error and classifier.sent == []


def test_the_listing_shows_the_model_not_its_decoding_helpers(tmp_path):
    from podium.stores.modelrepo.listing import list_models

    (tmp_path / "golden_model").mkdir()
    write_gpu_decode_models(tmp_path, gpu_metadata(), 64)
    assert list_models(tmp_path) == []  # no version of golden_model yet, and no helper rows
