"""One real ResNet50 export (Sequential head) into a temporary repository, checked in depth.

The export takes several seconds, so a module-scoped fixture runs it once (plus a second,
untrained export into the same repository for versioning) and the tests inspect the result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
import torch
from google.protobuf import text_format
from PIL import Image
from torch import nn
from torchvision.models import resnet50
from tritonclient.grpc import model_config_pb2

from export import ExportResult, export_model
from podium.core.imaging import decode_rgb, preprocess
from podium.core.modelmeta import METADATA_PARAMETER, ModelMetadata
from podium.stores.modelrepo.targets import PYTHON_MODEL_SOURCE
from tests.support.grad_cam import grad_cam, pearson

CLASSES = ["archery", "bmx", "curling", "fencing", "rowing"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Photographs written at several sizes and formats for verification (name, source, size).
PHOTOS = [
    ("astronaut.jpg", "astronaut", (512, 512)),
    ("coffee.png", "coffee", (600, 400)),
    ("chelsea_small.jpg", "chelsea", (180, 120)),
    ("rocket_tall.jpg", "rocket", (300, 900)),
    ("camera_grey.png", "camera", (333, 257)),
]


@dataclass
class Exported:
    repository: Path
    checkpoint: Path
    model: nn.Module
    photos: Path
    first: ExportResult
    second: ExportResult
    messages: list[str]


def fine_tuned_resnet50(photos: list[np.ndarray]) -> nn.Module:
    """A ResNet50 with the fine-tuning head whose answers differ from photo to photo.

    Fresh BatchNorm statistics (mean 0, variance 1) make every output the same; one pass
    over real photos in train mode with cumulative averaging gives realistic ones.
    """
    torch.manual_seed(7)
    model = resnet50(weights=None)
    model.fc = nn.Sequential(nn.Linear(2048, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, len(CLASSES)))
    batch = normalise(torch.from_numpy(np.stack(photos)))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model.train()(batch)
        model.fc[3].weight.mul_(30)  # confident answers, so probability differences show
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return model.eval()


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW, written independently of ServingModel."""
    return (pixels.permute(0, 3, 1, 2).to(torch.float32) / 255.0 - MEAN) / STD


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("export")
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    for name, source, size in PHOTOS:
        Image.fromarray(getattr(skimage.data, source)()).resize(size).save(photos / "sub" / name)
    pixels = [preprocess(decode_rgb(p.read_bytes())) for p in sorted((photos / "sub").iterdir())]
    model = fine_tuned_resnet50(pixels)
    checkpoint = root / "sports.pt"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, checkpoint)
    labels = root / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n\n")
    repository = root / "repo"
    messages: list[str] = []
    first = export_model(
        checkpoint=checkpoint,
        labels=labels,
        model_repository=repository,
        verify_images=photos,
        progress=messages.append,
    )
    second = export_model(
        checkpoint=None, untrained=True, labels=labels, model_repository=repository, max_batch_size=16
    )
    return Exported(repository, checkpoint, model, photos, first, second, messages)


def test_repository_layout(exported: Exported):
    model_dir = exported.repository / "resnet50_sports"
    assert exported.first.model_dir == model_dir
    assert (exported.first.version, exported.second.version) == (1, 2)
    for version in ("1", "2"):
        names = sorted(p.name for p in (model_dir / version).iterdir())
        assert names == ["fidelity.json", "model.onnx", "model.py", "podium.json"]
        assert (model_dir / version / "model.py").read_bytes() == PYTHON_MODEL_SOURCE.read_bytes()
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "2", "config.pbtxt", "labels.txt"]
    assert (model_dir / "labels.txt").read_text().splitlines() == CLASSES
    assert exported.first.onnx_path == model_dir / "1" / "model.onnx"


def test_config_parses_and_carries_the_metadata(exported: Exported):
    text = (exported.first.model_dir / "config.pbtxt").read_text()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert (config.name, config.backend, config.max_batch_size) == ("resnet50_sports", "python", 16)
    assert list(config.input[0].dims) == [224, 224, 3]
    assert list(config.output[0].dims) == [len(CLASSES)]
    assert not config.HasField("dynamic_batching")  # the CPU target runs without Triton's batcher
    # The config describes the newest version: the second, untrained export.
    metadata = ModelMetadata.model_validate_json(config.parameters[METADATA_PARAMETER].string_value)
    assert metadata == exported.second.metadata


def test_metadata_records_provenance(exported: Exported):
    first, second = exported.first.metadata, exported.second.metadata
    on_disk = ModelMetadata.from_json((exported.first.model_dir / "1" / "podium.json").read_text())
    assert on_disk == first
    assert first.classes == CLASSES and first.target == "cpu" and not first.untrained
    assert first.checkpoint_sha256 == hashlib.sha256(exported.checkpoint.read_bytes()).hexdigest()
    assert first.head == "Sequential(Linear(2048, 64), ReLU, Dropout, Linear(64, 5))"
    assert datetime.fromisoformat(first.exported_at).tzinfo is not None
    assert first.exporter["opset"] == "17" and first.exporter["torch"] == torch.__version__
    assert second.untrained and second.checkpoint_sha256 is None and second.head == "Linear(2048, 5)"


def test_fidelity_was_measured_on_the_given_images(exported: Exported):
    fidelity = json.loads((exported.first.model_dir / "1" / "fidelity.json").read_text())
    assert fidelity == exported.first.fidelity
    assert sorted(fidelity["images"]) == sorted(f"sub/{name}" for name, _, _ in PHOTOS)
    assert fidelity["reference"] == "pytorch-fp32"
    assert fidelity["top1_agreement"] == 1.0
    assert fidelity["max_abs_diff"] <= 1e-4
    assert exported.second.fidelity["images"][0].startswith("skimage:")
    assert any("verifying" in message for message in exported.messages)


def test_onnx_graph_has_a_dynamic_batch_axis(exported: Exported):
    graph = onnx.load(str(exported.first.onnx_path)).graph
    (images,), (probabilities, cam) = graph.input, graph.output
    assert images.name == "images" and images.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert dims == ["batch", 224, 224, 3]
    assert probabilities.name == "probabilities"
    assert [d.dim_param or d.dim_value for d in probabilities.type.tensor_type.shape.dim] == ["batch", len(CLASSES)]
    assert cam.name == "cam" and [d.dim_param or d.dim_value for d in cam.type.tensor_type.shape.dim] == ["batch", 7, 7]


def test_onnx_maps_are_grad_cam_of_the_sequential_head(exported: Exported):
    """The graph's closed form against autograd through the checkpoint's own model."""
    files = sorted((exported.photos / "sub").iterdir())
    batch = np.stack([preprocess(decode_rgb(p.read_bytes())) for p in files])
    session = ort.InferenceSession(str(exported.first.onnx_path), providers=["CPUExecutionProvider"])
    probabilities, maps = session.run(["probabilities", "cam"], {"images": batch})
    expected, classes = grad_cam(exported.model, batch)
    assert (probabilities.argmax(axis=1) == classes).all()
    assert min(pearson(got, want) for got, want in zip(maps, expected, strict=True)) >= 0.999
    # onnxruntime's kernels differ by CPU (1.04e-4 seen with AVX-512/AMX); a served map keeps
    # 1/255 steps (3.9e-3), so 2e-4 is still far below what it can show.
    np.testing.assert_allclose(maps, expected, atol=2e-4)
    assert np.allclose(maps.max(axis=(1, 2)), 1.0) and maps.min() >= 0
    report = exported.first.fidelity["cam"]
    assert report["images"] == len(files) and report["min_r"] >= 0.99 and report["reference"].startswith("autograd")


def test_onnx_agrees_with_the_original_pytorch_model(exported: Exported):
    """Independent of verify.py: the checkpoint's own model, normalised in plain torch."""
    files = sorted((exported.photos / "sub").iterdir())
    batch = np.stack([preprocess(decode_rgb(p.read_bytes())) for p in files])
    with torch.no_grad():
        expected = torch.softmax(exported.model(normalise(torch.from_numpy(batch))), dim=1).numpy()
    session = ort.InferenceSession(str(exported.first.onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"images": batch})[0]
    one_by_one = np.concatenate(
        [session.run(["probabilities"], {"images": batch[i : i + 1]})[0] for i in range(len(batch))]
    )
    assert got.shape == (len(files), len(CLASSES))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(got - expected).max() <= 1e-4
    assert np.abs(one_by_one - got).max() <= 1e-5
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert np.ptp(expected, axis=0).max() > 0.05  # the photos get different answers


def test_an_efficientnet_b3_at_300_pixels_is_served_as_torchvision_transforms_it(tmp_path: Path):
    """Another input size end to end without Triton: its transform (320, 300, bicubic) in the
    metadata, a 10x10 map (not 300 // 32), the config's dims, and the worker's decoding plus
    the ONNX graph equal to torchvision's transform plus the network on photographs."""
    from torchvision import transforms as T

    from export.stand_in import steady_network
    from podium.core.imaging import Decoder
    from podium.core.modelmeta import CAM_NAME, INPUT_NAME, OUTPUT_NAME

    checkpoint = tmp_path / "b3.pt"
    network = steady_network("efficientnet_b3", len(CLASSES))
    torch.save(network.state_dict(), checkpoint)
    (tmp_path / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    result = export_model(
        checkpoint=checkpoint, model_repository=tmp_path / "repo", model_name="b3", labels=tmp_path / "labels.txt"
    )
    meta = result.metadata
    assert (meta.architecture, meta.preprocessing.resize, meta.preprocessing.crop) == ("efficientnet_b3", 320, 300)
    assert meta.preprocessing.interpolation == "bicubic" and meta.cam_grid == (10, 10)
    config = text_format.Parse((result.model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    dims = {tensor.name: list(tensor.dims) for tensor in (*config.input, *config.output)}
    assert dims[INPUT_NAME] == [300, 300, 3] and dims[CAM_NAME] == [10, 10]
    transform = T.Compose(
        [
            T.Resize(320, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(300),
            T.ToTensor(),
            T.Normalize(MEAN.flatten().tolist(), STD.flatten().tolist()),
        ]
    )
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    decoder = Decoder()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        picture = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        encoded = tmp_path / f"{name}.png"
        picture.save(encoded)
        pixels = decoder.model_input(encoded.read_bytes(), meta.preprocessing.spec())
        probabilities, maps = session.run([OUTPUT_NAME, CAM_NAME], {INPUT_NAME: pixels[None]})
        with torch.no_grad():
            expected = torch.softmax(network.eval()(transform(picture)[None]), dim=1).numpy()
        assert maps.shape == (1, 10, 10)
        assert probabilities.argmax() == expected.argmax() and np.abs(probabilities - expected).max() <= 1e-4, name


def test_a_grey_network_exports_from_its_checkpoint_and_answers_as_torchvision(tmp_path: Path):
    """A ResNet18 whose first convolution takes one channel (a network trained on grey
    images): detected as such, exported with Grayscale in its preprocessing, and the worker's
    decoding plus the ONNX graph equal torchvision's Grayscale, Resize, CenterCrop on photographs."""
    from torchvision import transforms as T
    from torchvision.models import resnet18

    from podium.core.imaging import Decoder
    from podium.core.modelmeta import INPUT_NAME, OUTPUT_NAME

    torch.manual_seed(4)
    network = resnet18(num_classes=len(CLASSES))
    network.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
    with torch.no_grad():
        network.fc.weight.mul_(25)
    checkpoint = tmp_path / "grey.pt"
    torch.save(network.state_dict(), checkpoint)
    (tmp_path / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    result = export_model(
        checkpoint=checkpoint,
        model_repository=tmp_path / "repo",
        model_name="grey",
        labels=tmp_path / "labels.txt",
        preprocessing={"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)},
    )
    meta = result.metadata
    assert (meta.architecture, meta.preprocessing.grayscale) == ("resnet18", True)
    assert result.fidelity["top1_agreement"] == 1.0 and result.fidelity["cam"]["min_r"] >= 0.99
    transform = T.Compose([T.Grayscale(), T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.5], [0.25])])
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    for name in ("astronaut", "coffee", "camera"):
        picture = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        encoded = tmp_path / f"{name}.jpg"
        picture.save(encoded, quality=92)
        pixels = Decoder().model_input(encoded.read_bytes(), meta.preprocessing.spec())
        (probabilities,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixels[None]})
        with torch.no_grad():
            expected = torch.softmax(network.eval()(transform(decode_rgb(encoded.read_bytes()))[None]), dim=1).numpy()
        assert np.abs(probabilities - expected).max() <= 1e-4, name
