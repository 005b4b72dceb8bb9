"""The gpu-dali target's two extra models: JPEG decoding on the GPU in front of the engine.

Past a few thousand images per second, decoding on worker CPUs costs more than the model
(docs/performance.md). With ``--target gpu-dali`` the export writes, beside the TensorRT
model ``NAME``:

- ``NAME_dali``: Triton's DALI backend running ``podium/stores/modelrepo/dali_pipeline/dali.py`` (decode
  with ``device="mixed"``, torchvision's resize and centre crop), encoded bytes in, the
  uint8 HWC crop out; ragged batches, so that files of any length share a GPU batch.
- ``NAME_encoded``: an ensemble, encoded bytes in, the model's outputs out. Its config
  carries the model's metadata with ``input_format: "encoded"``: a worker pointed at it
  (``PODIUM_MODEL_NAME=NAME_encoded``) sends the files' bytes and decodes nothing.

Both configs are built from Triton's model-config protobuf, like every other config.
"""

from __future__ import annotations

import re
from pathlib import Path

from tritonclient.grpc import model_config_pb2

from podium.core.modelmeta import ENCODED_INPUT, ENCODED_INPUT_NAME, INPUT_NAME, METADATA_PARAMETER, ModelMetadata
from podium.stores.modelrepo.config import COLOUR_CHANNELS, labels_text, render_model_config
from podium.stores.modelrepo.files import FOLDER_MODE, replace_text
from podium.stores.modelrepo.layout import CONFIG_FILENAME, LABELS_FILENAME

DALI_SUFFIX = "_dali"
ENSEMBLE_SUFFIX = "_encoded"
DALI_BACKEND = "dali"
ENSEMBLE_PLATFORM = "ensemble"
PIPELINE_FILENAME = "dali.py"  # the DALI backend autoserializes a version's dali.py
PIPELINE_SOURCE = Path(__file__).with_name("dali_pipeline") / PIPELINE_FILENAME
# The DALI model's output and the engine's input inside the ensemble.
PIXELS_TENSOR = "decoded_pixels"
# Decoding is quick next to the queue of a busy GPU: a short wait fills DALI's batches.
DALI_QUEUE_DELAY_US = 200
_KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU


def dali_model_name(model_name: str) -> str:
    return model_name + DALI_SUFFIX


def encoded_model_name(model_name: str) -> str:
    return model_name + ENSEMBLE_SUFFIX


def is_gpu_decode_model(model_dir: Path) -> bool:
    """NAME_dali or NAME_encoded beside a NAME model: gpu-dali's helpers, not a model of their own."""
    for suffix in (DALI_SUFFIX, ENSEMBLE_SUFFIX):
        if model_dir.name.endswith(suffix) and (model_dir.parent / model_dir.name.removesuffix(suffix)).is_dir():
            return True
    return False


def build_dali_config(metadata: ModelMetadata, max_batch_size: int) -> model_config_pb2.ModelConfig:
    crop = metadata.preprocessing.crop
    config = model_config_pb2.ModelConfig(
        name=dali_model_name(metadata.model_name), backend=DALI_BACKEND, max_batch_size=max_batch_size
    )
    # Ragged: each request holds one file of its own length; Triton may still batch them.
    config.input.add(name=ENCODED_INPUT_NAME, data_type=model_config_pb2.TYPE_UINT8, dims=[-1], allow_ragged_batch=True)
    config.output.add(name=PIXELS_TENSOR, data_type=model_config_pb2.TYPE_UINT8, dims=[crop, crop, COLOUR_CHANNELS])
    config.dynamic_batching.max_queue_delay_microseconds = DALI_QUEUE_DELAY_US
    # One instance: the DALI backend's own guidance (more multiply its memory, not its speed).
    config.instance_group.add(kind=_KIND_GPU, count=1)
    return config


def build_ensemble_config(metadata: ModelMetadata, max_batch_size: int) -> model_config_pb2.ModelConfig:
    """Encoded bytes -> NAME_dali -> NAME; the outputs and labels are the model's own."""
    encoded = encoded_metadata(metadata)
    config = model_config_pb2.ModelConfig(
        name=encoded.model_name, platform=ENSEMBLE_PLATFORM, max_batch_size=max_batch_size
    )
    config.input.add(name=ENCODED_INPUT_NAME, data_type=model_config_pb2.TYPE_UINT8, dims=[-1])
    outputs = [metadata.output_name, *([metadata.cam_name] if metadata.cam_name else [])]
    config.output.add(
        name=metadata.output_name,
        data_type=model_config_pb2.TYPE_FP32,
        dims=[len(metadata.classes)],
        label_filename=LABELS_FILENAME,
    )
    if metadata.cam_name:
        config.output.add(name=metadata.cam_name, data_type=model_config_pb2.TYPE_FP32, dims=list(metadata.cam_grid))
    steps = config.ensemble_scheduling
    decode = steps.step.add(model_name=dali_model_name(metadata.model_name), model_version=-1)
    decode.input_map[ENCODED_INPUT_NAME] = ENCODED_INPUT_NAME
    decode.output_map[PIXELS_TENSOR] = PIXELS_TENSOR
    classify = steps.step.add(model_name=metadata.model_name, model_version=-1)
    classify.input_map[INPUT_NAME] = PIXELS_TENSOR
    for name in outputs:
        classify.output_map[name] = name
    config.parameters[METADATA_PARAMETER].string_value = encoded.model_dump_json()
    return config


def encoded_metadata(metadata: ModelMetadata) -> ModelMetadata:
    """What the ensemble says about itself: the model's metadata, taking encoded files."""
    return metadata.model_copy(
        update={
            "model_name": encoded_model_name(metadata.model_name),
            "input_name": ENCODED_INPUT_NAME,
            "input_format": ENCODED_INPUT,
            "fingerprint_name": "",
            "row_tag_name": "",
            "row_tag_echo_name": "",
        }
    )


def pipeline_source(metadata: ModelMetadata, max_batch_size: int) -> str:
    """dali.py with the model's resize, crop, interpolation and batch size filled in."""
    text = PIPELINE_SOURCE.read_text(encoding="utf-8")
    for name, value in (
        ("RESIZE", metadata.preprocessing.resize),
        ("CROP", metadata.preprocessing.crop),
        ("MAX_BATCH_SIZE", max_batch_size),
    ):
        text, count = re.subn(rf"^{name} = \d+$", f"{name} = {value}", text, count=1, flags=re.MULTILINE)
        assert count == 1, f"{PIPELINE_SOURCE} lost its {name} line"
    interpolation = metadata.preprocessing.interpolation
    text, count = re.subn(
        r'^INTERPOLATION = "\w+"', f'INTERPOLATION = "{interpolation}"', text, count=1, flags=re.MULTILINE
    )
    assert count == 1, f"{PIPELINE_SOURCE} lost its INTERPOLATION line"
    return text


def write_gpu_decode_models(repository: Path, metadata: ModelMetadata, max_batch_size: int) -> list[Path]:
    """Write (or bring up to date) NAME_dali and NAME_encoded in ``repository``; their folders."""
    dali_dir = repository / dali_model_name(metadata.model_name)
    ensemble_dir = repository / encoded_model_name(metadata.model_name)
    for folder in (dali_dir / "1", ensemble_dir / "1"):  # an ensemble needs an (empty) version folder
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    replace_text(dali_dir / "1" / PIPELINE_FILENAME, pipeline_source(metadata, max_batch_size))
    replace_text(dali_dir / CONFIG_FILENAME, render_model_config(build_dali_config(metadata, max_batch_size)))
    replace_text(ensemble_dir / LABELS_FILENAME, labels_text(metadata.classes))
    replace_text(ensemble_dir / CONFIG_FILENAME, render_model_config(build_ensemble_config(metadata, max_batch_size)))
    return [dali_dir, ensemble_dir]
