"""An ONNX classifier brought as is -> Podium's served form, checked against the original.

What ``torch.onnx.export``, tf2onnx (Keras) or ``yolo export format=onnx`` write takes float32
pixels, normalised, NCHW (or NHWC, Keras' layout), and answers logits or probabilities.
Podium serves uint8 NHWC pixels in and probabilities out, so the graph is wrapped:

    images uint8 [N, S, S, 3] -> Cast -> / 255 -> - mean -> / std -> (Transpose to NCHW)
        -> the original graph -> (Softmax) -> probabilities [N, C]

The wrapped model is run against the original one in onnxruntime on the same pixels
(normalised in numpy here) before anything is written; it has no activation maps (Podium
cannot know where such a graph's last feature maps are), so its jobs cannot ``--explain``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.errors import ExportError
from export.pipeline import (
    ExportResult,
    Progress,
    check_model_name,
    engine_recipe,
    exporter_versions,
    preprocessing_of,
    read_classes,
    served_as,
)
from export.verify import folder_images, sample_images
from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME, ModelMetadata, Preprocessing
from podium.stores.modelrepo import (
    EngineSettings,
    build_model_config,
    onnx_session,
    resolve_target,
    write_model_version,
)
from podium.stores.modelrepo.files import file_sha256
from podium.stores.modelrepo.layout import ONNX_FILENAME
from podium.stores.modelrepo.targets import CPU_INT8

LOGITS = "logits"
PROBABILITIES = "probabilities"
PIXEL_MAX = 255.0
_PREFIX = "podium_"
# Largest |Δp| between the wrapped and the original graph (both onnxruntime float32).
WRAP_TOLERANCE = 1e-5
# ModelMetadata.architecture of a model brought as ONNX.
BROUGHT_ONNX = "onnx"


@dataclass(frozen=True)
class OnnxClassifier:
    """What the original graph takes and answers."""

    model: onnx.ModelProto
    input_name: str
    output_name: str
    channels_first: bool
    side: int | None  # the fixed input side, or None when the graph takes any size
    num_classes: int


def read_classifier(path: Path) -> OnnxClassifier:
    """Load ``path`` and check that it is an image classifier Podium can wrap; ExportError says why not."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises several untyped errors for a file that is not a model
        raise ExportError(f"{path} is not a readable ONNX model: {str(exc).splitlines()[0][:200]}") from exc
    initialised = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialised]
    if len(inputs) != 1:
        raise ExportError(f"{path} takes {len(inputs)} inputs; an image classifier takes one (a batch of images)")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type != TensorProto.FLOAT or len(dims) != 4 or 3 not in (dims[1], dims[3]):
        raise ExportError(
            f"{path}'s input {inputs[0].name} is {TensorProto.DataType.Name(tensor.elem_type).lower()} {dims}; "
            "Podium wraps float32 [N, 3, H, W] (or [N, H, W, 3]) classifiers"
        )
    channels_first = dims[1] == 3
    height, width = (dims[2], dims[3]) if channels_first else (dims[1], dims[2])
    if height != width:
        raise ExportError(f"{path} takes {height}x{width} images; Podium serves square centre crops")
    output = model.graph.output[0]
    out_dims = [d.dim_value if d.HasField("dim_value") else None for d in output.type.tensor_type.shape.dim]
    if len(out_dims) != 2 or not out_dims[1]:
        raise ExportError(f"{path}'s first output {output.name} is {out_dims}; a classifier answers [N, classes]")
    return OnnxClassifier(model, inputs[0].name, output.name, channels_first, height, int(out_dims[1]))


def wrap(
    source: OnnxClassifier, crop: int, mean: tuple[float, ...], std: tuple[float, ...], outputs: str
) -> onnx.ModelProto:
    """The served form of ``source`` (module docstring): uint8 NHWC in, probabilities out."""
    if outputs not in (LOGITS, PROBABILITIES):
        raise ExportError(f"--outputs is {LOGITS} or {PROBABILITIES}, not {outputs!r}")
    if source.side is not None and source.side != crop:
        raise ExportError(f"the ONNX model takes {source.side}x{source.side} images; pass --crop {source.side}")
    model = onnx.ModelProto()
    model.CopyFrom(source.model)
    graph = model.graph
    shape = (1, 3, 1, 1) if source.channels_first else (1, 1, 1, 3)
    constants = {
        f"{_PREFIX}scale": np.array(PIXEL_MAX, dtype=np.float32),
        f"{_PREFIX}mean": np.array(mean, dtype=np.float32).reshape(shape),
        f"{_PREFIX}std": np.array(std, dtype=np.float32).reshape(shape),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    pre = [helper.make_node("Cast", [INPUT_NAME], [f"{_PREFIX}float"], to=TensorProto.FLOAT, name=f"{_PREFIX}cast")]
    last = f"{_PREFIX}float"
    if source.channels_first:
        pre.append(helper.make_node("Transpose", [last], [f"{_PREFIX}nchw"], perm=[0, 3, 1, 2], name=f"{_PREFIX}nchw"))
        last = f"{_PREFIX}nchw"
    pre += [
        helper.make_node("Div", [last, f"{_PREFIX}scale"], [f"{_PREFIX}unit"], name=f"{_PREFIX}unit"),
        helper.make_node("Sub", [f"{_PREFIX}unit", f"{_PREFIX}mean"], [f"{_PREFIX}centred"], name=f"{_PREFIX}centred"),
        helper.make_node("Div", [f"{_PREFIX}centred", f"{_PREFIX}std"], [source.input_name], name=f"{_PREFIX}norm"),
    ]
    post_op = "Softmax" if outputs == LOGITS else "Identity"
    post = helper.make_node(
        post_op,
        [source.output_name],
        [OUTPUT_NAME],
        name=f"{_PREFIX}out",
        **({"axis": 1} if post_op == "Softmax" else {}),
    )
    nodes = pre + list(graph.node) + [post]
    del graph.node[:]
    graph.node.extend(nodes)
    original_input = next(i for i in graph.input if i.name == source.input_name)
    graph.input.remove(original_input)
    graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", crop, crop, 3]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", source.num_classes]))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the wrapped ONNX model is not valid: {exc}") from None
    return model


def compare_with_original(
    source_path: Path,
    wrapped_path: Path,
    source: OnnxClassifier,
    images: list[tuple[str, np.ndarray]],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    outputs: str,
) -> dict:
    """The wrapped graph against the original on the same pixels; ExportError if they differ."""
    batch = np.stack([pixels for _, pixels in images])
    normalised = (batch.astype(np.float32) / np.float32(PIXEL_MAX) - np.float32(mean)) / np.float32(std)
    if source.channels_first:
        normalised = normalised.transpose(0, 3, 1, 2)
    try:
        original = np.concatenate(
            [
                onnx_session(source_path).run([source.output_name], {source.input_name: row[None]})[0]
                for row in normalised
            ]
        )
        (served,) = onnx_session(wrapped_path).run([OUTPUT_NAME], {INPUT_NAME: batch})
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(
            f"ONNX Runtime could not run the model on a batch: {str(exc).splitlines()[0][:300]} (is its batch axis "
            "dynamic? torch.onnx.export(dynamic_axes=...), yolo export dynamic=True)"
        ) from exc
    looks_like_probabilities = bool(np.all(original >= 0) and np.allclose(original.sum(axis=1), 1.0, atol=1e-4))
    if outputs == LOGITS and looks_like_probabilities:
        raise ExportError(
            f"{source_path.name}'s outputs are probabilities already (each row sums to 1): pass --outputs {PROBABILITIES}"
        )
    if outputs == LOGITS:
        shifted = np.exp(original - original.max(axis=1, keepdims=True))
        original = shifted / shifted.sum(axis=1, keepdims=True)
    agreement = float(np.mean(original.argmax(axis=1) == served.argmax(axis=1)))
    diff = np.abs(original - served)
    if agreement < 1.0 or float(diff.max()) > WRAP_TOLERANCE:
        raise ExportError(
            f"the wrapped model differs from {source_path.name}: top-1 agreement {agreement:.1%}, max |Δp| "
            f"{float(diff.max()):.2e} (allowed {WRAP_TOLERANCE:g}); are its outputs {outputs}? see --outputs"
        )
    if outputs == PROBABILITIES and not looks_like_probabilities:
        raise ExportError(
            f"{source_path.name}'s outputs are not probabilities (rows do not sum to 1): pass --outputs {LOGITS}"
        )
    return {
        "reference": f"onnxruntime-fp32 on {source_path.name} (as brought)",
        "images": [name for name, _ in images],
        "top1_agreement": agreement,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "tolerance": WRAP_TOLERANCE,
    }


def export_onnx(
    *,
    onnx_path: Path,
    model_repository: Path,
    labels: Path,
    target: str = "cpu",
    model_name: str,
    outputs: str = LOGITS,
    preprocessing: Mapping[str, object] | None = None,
    verify_images: Path | None = None,
    max_batch_size: int | None = None,
    engine_settings: EngineSettings | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """``podium export --onnx``: wrap, check against the original, write a new model version."""
    report = progress or (lambda message: None)
    spec = resolve_target(target)
    if spec.name == CPU_INT8 or spec.decodes_on_gpu:
        raise ExportError(
            f"--onnx serves the model as brought: use --target cpu, cpu-ort, gpu or gpu-ort, not {target}"
        )
    check_model_name(model_name)
    engine = (engine_settings or EngineSettings()) if spec.needs_engine else None
    batch_limit = max_batch_size or (engine.max_batch_size if engine else spec.default_max_batch_size)
    classes = read_classes(Path(labels), None)
    report(f"reading {onnx_path}")
    source = read_classifier(Path(onnx_path))
    if source.num_classes != len(classes):
        raise ExportError(f"{onnx_path} answers {source.num_classes} classes but {labels} names {len(classes)}")
    transform = _onnx_transform(source, dict(preprocessing or {}))
    report(
        f"{'NCHW' if source.channels_first else 'NHWC'} input, {source.num_classes} classes; preprocessing: resize "
        f"{transform.resize}, crop {transform.crop}, {transform.interpolation}, mean {transform.mean}, std {transform.std}"
    )
    metadata = ModelMetadata(
        model_name=model_name,
        target=spec.name,
        precision=spec.precision,
        classes=classes,
        architecture=BROUGHT_ONNX,
        preprocessing=transform,
        checkpoint_sha256=file_sha256(Path(onnx_path)),
        head=f"as brought ({outputs})",
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        exporter=exporter_versions(),
    )
    with tempfile.TemporaryDirectory(prefix="podium-onnx-") as workdir:
        wrapped_path = Path(workdir) / ONNX_FILENAME
        onnx.save(wrap(source, transform.crop, transform.mean, transform.std, outputs), str(wrapped_path))
        pre = transform.spec()
        images = folder_images(Path(verify_images), pre) if verify_images else sample_images(pre)
        report(f"checking the wrapped model against {Path(onnx_path).name} on {len(images)} images")
        fidelity = compare_with_original(
            Path(onnx_path), wrapped_path, source, images, transform.mean, transform.std, outputs
        ) | served_as(spec, metadata)
        extra = dict(spec.extra_files)
        if engine is not None:
            extra |= engine_recipe(Path(workdir), wrapped_path, images, metadata, engine)
        written = write_model_version(
            Path(model_repository),
            build_model_config(metadata, spec, batch_limit),
            metadata=metadata,
            onnx_file=wrapped_path,
            fidelity=fidelity,
            extra_files=extra,
            pending=spec.needs_engine,
        )
    report(f"exported {written.model_dir} version {written.version}")
    return ExportResult(written.model_dir, written.version, metadata, written.onnx_path, fidelity, written.pending)


def _onnx_transform(source: OnnxClassifier, overrides: dict[str, object]) -> Preprocessing:
    """The preprocessing: the flags, else the graph's fixed side as the crop and ImageNet's
    resize ratio (256 for 224) and normalisation."""
    crop = overrides.get("crop") or source.side or Preprocessing().crop
    return preprocessing_of({"crop": crop, "resize": round(int(crop) * 256 / 224)}, overrides)
