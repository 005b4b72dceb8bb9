"""export_model: checkpoint -> verified ONNX -> new version in a Triton model repository."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
import torchvision
from pydantic import ValidationError

from export.activation_map import ExplainingModel
from export.architectures import Architecture, architecture
from export.checkpoint import LoadedModel, load_model, untrained_model
from export.errors import ExportError
from export.int8_export import DEFAULT_MIN_INT8_AGREEMENT, quantise_verified
from export.labels import DEFAULT_LABELS, dataset_classes, labels_beside, read_labels
from export.torch2onnx import DEFAULT_OPSET, torch2onnx
from export.verify import folder_images, sample_images, verify_maps, verify_onnx
from podium.core.modelmeta import (
    CAM_NAME,
    DEFAULT_ARCHITECTURE,
    DEFAULT_MODEL_NAME,
    FINGERPRINT_NAME,
    MODEL_NAME_PATTERN,
    OUTPUT_NAME,
    ROW_TAG_ECHO_NAME,
    ROW_TAG_NAME,
    ModelMetadata,
    Preprocessing,
)
from podium.stores.modelrepo import EngineSettings, Target, build_model_config, resolve_target, write_model_version
from podium.stores.modelrepo.files import file_sha256
from podium.stores.modelrepo.gpu_decode import write_gpu_decode_models
from podium.stores.modelrepo.layout import CHECK_IMAGES_FILENAME, ONNX_FILENAME, RECIPE_FILENAME
from podium.stores.modelrepo.recipe import recipe_from_settings
from podium.stores.modelrepo.targets import CPU, CPU_INT8

Progress = Callable[[str], None]


@dataclass
class ExportResult:
    """What export_model wrote."""

    model_dir: Path
    version: int
    metadata: ModelMetadata
    onnx_path: Path
    fidelity: dict
    pending: bool = False  # a GPU version waiting for `podium build-engine`


def export_model(
    *,
    checkpoint: Path | None,
    model_repository: Path,
    labels: Path | None = None,
    target: str = CPU,
    model_name: str = DEFAULT_MODEL_NAME,
    untrained: bool = False,
    verify_images: Path | None = None,
    max_batch_size: int | None = None,
    labels_from: Path | None = None,
    calibration: Path | None = None,
    force: bool = False,
    min_int8_agreement: float = DEFAULT_MIN_INT8_AGREEMENT,
    engine_settings: EngineSettings | None = None,
    progress: Progress | None = None,
    arch: str | None = None,
    preprocessing: Mapping[str, object] | None = None,
) -> ExportResult:
    """Export a checkpoint of a torchvision classifier (or a seeded untrained one) as a new
    model version.

    ``arch`` names the network (default: detected from the checkpoint's keys and shapes;
    ResNet50 for an untrained model); ``preprocessing`` overrides fields of the transform
    (resize, crop, interpolation, mean, std), which is otherwise that of torchvision's
    ImageNet weights for the network.

    The ONNX model is checked against PyTorch on real images before anything is written
    to ``model_repository``; cpu-int8 quantises it with images from ``calibration`` and
    checks it on a held-out part; gpu writes a pending version for ``podium build-engine``.
    Raises ExportError with a readable message on any problem.
    """
    report = progress or (lambda message: None)
    spec = resolve_target(target)
    engine = (engine_settings or EngineSettings()) if spec.needs_engine else None
    default_batch = engine.max_batch_size if engine else spec.default_max_batch_size
    batch = default_batch if max_batch_size is None else max_batch_size
    _check_arguments(checkpoint, untrained, model_name, batch)
    _check_target_arguments(spec, calibration, batch, engine)
    labels = labels or (None if labels_from else labels_beside(checkpoint))
    classes = read_classes(labels, labels_from)
    started = time.monotonic()

    if untrained:
        network = architecture(arch or DEFAULT_ARCHITECTURE)
        report(f"building an untrained {network.name} with {len(classes)} classes (seeded)")
        loaded = untrained_model(len(classes), network.name)
    else:
        report(f"loading checkpoint {checkpoint}")
        loaded = load_model(Path(checkpoint), architecture(arch).name if arch else None)
        how = "detected from its keys and shapes" if loaded.detected else "as named"
        report(f"{loaded.arch.name} ({how}), head {loaded.head.describe()}")
    _check_classes(loaded, classes, labels or labels_from)
    _check_int8(spec, loaded)
    transform = _transform(loaded.arch, {**(preprocessing or {}), **({"grayscale": True} if loaded.grey else {})})
    _check_grey(spec, loaded, transform)
    report(
        f"preprocessing: resize {transform.resize}, crop {transform.crop}, {transform.interpolation}, "
        f"mean {transform.mean}, std {transform.std}"
    )
    serving = ExplainingModel(
        loaded.model, loaded.arch, mean=transform.mean, std=transform.std, channels=loaded.channels
    ).eval()
    metadata = _metadata(loaded, classes, model_name, spec, transform, _map_side(serving, transform.crop))

    with tempfile.TemporaryDirectory(prefix="podium-export-") as workdir:
        onnx_file = Path(workdir) / ONNX_FILENAME
        report(f"exporting {loaded.head.describe()} head to ONNX (opset {DEFAULT_OPSET})")
        torch2onnx(serving, onnx_file, input_size=metadata.preprocessing.crop, output_names=(OUTPUT_NAME, CAM_NAME))
        preprocessing = metadata.preprocessing.spec()
        images = folder_images(Path(verify_images), preprocessing) if verify_images else sample_images(preprocessing)
        report(f"verifying ONNX Runtime against PyTorch on {len(images)} images, and its maps against Grad-CAM")
        fidelity = verify_onnx(serving, onnx_file, images) | served_as(spec, metadata)
        fidelity["cam"] = verify_maps(serving, onnx_file, images)
        extra_files = dict(spec.extra_files)
        if spec.name == CPU_INT8:
            int8_file = Path(workdir) / "int8" / ONNX_FILENAME
            fidelity = quantise_verified(
                serving,
                onnx_file,
                int8_file,
                Path(calibration),
                metadata,
                fp32_check=fidelity,
                min_agreement=min_int8_agreement,
                force=force,
                progress=report,
            )
            onnx_file = int8_file
        if engine is not None:
            extra_files |= engine_recipe(Path(workdir), onnx_file, images, metadata, engine)
        report(f"writing model {model_name} into {model_repository}")
        config = build_model_config(metadata, spec, batch)
        written = write_model_version(
            Path(model_repository),
            config,
            metadata=metadata,
            onnx_file=onnx_file,
            fidelity=fidelity,
            extra_files=extra_files,
            pending=spec.needs_engine,
        )
        if spec.decodes_on_gpu:
            dali_dir, ensemble_dir = write_gpu_decode_models(Path(model_repository), metadata, batch)
            report(f"wrote {dali_dir.name} (decoding on the GPU, DALI) and {ensemble_dir.name} (takes encoded files)")
    report(f"exported {written.model_dir} version {written.version} in {time.monotonic() - started:.1f} s")
    return ExportResult(written.model_dir, written.version, metadata, written.onnx_path, fidelity, written.pending)


def engine_recipe(
    workdir: Path, onnx_file: Path, images: list, metadata: ModelMetadata, settings: EngineSettings
) -> dict[str, Path]:
    """build.json and the check images (the verified ones) for `podium build-engine`."""
    recipe = recipe_from_settings(
        settings,
        onnx_sha256=file_sha256(onnx_file),
        crop=metadata.preprocessing.crop,
        check_images=[name for name, _ in images],
    )
    recipe_file, check_file = workdir / RECIPE_FILENAME, workdir / CHECK_IMAGES_FILENAME
    recipe_file.write_text(recipe.model_dump_json(indent=2) + "\n", encoding="utf-8")
    np.save(check_file, np.stack([pixels for _, pixels in images]), allow_pickle=False)
    return {RECIPE_FILENAME: recipe_file, CHECK_IMAGES_FILENAME: check_file}


def served_as(target: Target, metadata: ModelMetadata) -> dict:
    """What every fidelity report names besides the figures: target, model, preprocessing."""
    return {
        "target": target.name,
        "model": "onnxruntime-fp32",
        "preprocessing": metadata.preprocessing.model_dump(mode="json"),
    }


def read_classes(labels: Path | None, labels_from: Path | None) -> list[str]:
    if labels is not None and labels_from is not None:
        raise ExportError("pass either --labels FILE or --labels-from DATASET_DIR, not both")
    if labels_from is not None:
        return dataset_classes(Path(labels_from))
    return read_labels(Path(labels) if labels else DEFAULT_LABELS)


def _check_target_arguments(
    target: Target, calibration: Path | None, max_batch_size: int, engine: EngineSettings | None
) -> None:
    if target.name == CPU_INT8 and calibration is None:
        raise ExportError(
            "--target cpu-int8 needs --calibration DIR: a few hundred photographs like those it will classify "
            "(every 5th is held out to check the INT8 model)"
        )
    if target.name != CPU_INT8 and calibration is not None:
        raise ExportError(f"--calibration is for --target {CPU_INT8} only")
    if engine is not None and max_batch_size != engine.max_batch_size:
        raise ExportError(
            f"the GPU max batch size is the engine profile's maximum ({engine.max_batch_size}); set "
            "PODIUM_ENGINE_MAX_BATCH_SIZE instead of passing another one"
        )


def _check_arguments(checkpoint: Path | None, untrained: bool, model_name: str, max_batch_size: int) -> None:
    if untrained and checkpoint is not None:
        raise ExportError("pass either --checkpoint CKPT or --untrained, not both")
    if not untrained and checkpoint is None:
        raise ExportError("no checkpoint given: pass --checkpoint CKPT, or --untrained for a seeded untrained model")
    check_model_name(model_name)
    if max_batch_size < 1:
        raise ExportError(f"max batch size must be at least 1, got {max_batch_size}")


def check_model_name(model_name: str) -> None:
    if not MODEL_NAME_PATTERN.fullmatch(model_name):
        raise ExportError(
            f"model name {model_name!r} is not usable as a folder name; use letters, digits, '_', '-' and '.'"
        )


def _check_classes(loaded: LoadedModel, classes: list[str], labels: Path | None) -> None:
    if loaded.head.num_classes != len(classes):
        source = labels or f"the default labels ({DEFAULT_LABELS.name})"
        raise ExportError(
            f"the checkpoint's head has {loaded.head.num_classes} outputs but {source} names "
            f"{len(classes)} classes; pass --labels FILE with one class per line, in training order, or --labels-from DATASET_DIR"
        )


def default_preprocessing(arch: Architecture) -> Preprocessing:
    """The eval transform of torchvision's ImageNet weights for ``arch``, ImageNet mean and std."""
    spec = arch.transform()
    return Preprocessing(resize=spec.resize, crop=spec.crop, interpolation=spec.interpolation)


def _transform(arch: Architecture, overrides: Mapping[str, object]) -> Preprocessing:
    return preprocessing_of(default_preprocessing(arch).model_dump(), overrides)


def preprocessing_of(defaults: Mapping[str, object], overrides: Mapping[str, object]) -> Preprocessing:
    """``defaults`` with the ``overrides`` that are set; ExportError says which value is wrong."""
    chosen = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Preprocessing.model_validate({**defaults, **chosen})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"preprocessing: {problems}") from None


def _map_side(serving: ExplainingModel, crop: int) -> int:
    """The side of the network's last feature maps for a crop x crop input (7 for 224 in
    most networks, 10 for EfficientNet-B3's 300): what the map output's shape is."""
    with torch.inference_mode():
        features = serving.eval().features(torch.zeros(1, crop, crop, 3, dtype=torch.uint8))
    return int(features.shape[-1])


def _check_grey(target: Target, loaded: LoadedModel, transform: Preprocessing) -> None:
    if target.decodes_on_gpu and transform.grayscale:
        raise ExportError(
            f"--target {target.name} decodes in colour on the GPU; a grey model ({loaded.arch.name} with a one-channel "
            "input, or --grayscale) is served with --target gpu, decoded by the workers"
        )


def _check_int8(target: Target, loaded: LoadedModel) -> None:
    if target.name == CPU_INT8 and loaded.arch.family == "vgg":
        raise ExportError(
            f"--target {CPU_INT8} needs a network with global average pooling before its head; {loaded.arch.name} "
            "pools to 7x7: export it with --target cpu"
        )


def _metadata(
    loaded: LoadedModel, classes: list[str], model_name: str, target: Target, transform: Preprocessing, map_side: int
) -> ModelMetadata:
    return ModelMetadata(
        model_name=model_name,
        target=target.name,
        precision=target.precision,
        classes=classes,
        architecture=loaded.arch.name,
        preprocessing=transform,
        cam_side=map_side,
        fingerprint_name=FINGERPRINT_NAME if target.returns_fingerprint else "",
        row_tag_name=ROW_TAG_NAME if target.returns_fingerprint else "",
        row_tag_echo_name=ROW_TAG_ECHO_NAME if target.returns_fingerprint else "",
        cam_name=CAM_NAME,
        checkpoint_sha256=loaded.checkpoint_sha256,
        untrained=loaded.untrained,
        head=loaded.head.describe(),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        exporter=exporter_versions(),
    )


def exporter_versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opset": str(DEFAULT_OPSET),
    }
