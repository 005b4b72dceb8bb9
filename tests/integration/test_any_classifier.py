"""Other networks than ResNet50, served by the real parts: exported from the checkpoint alone
(network detected, head inferred, transform the network's own), their answers equal
PyTorch's under torchvision's transform for that network, and EfficientNet's maps are its
Grad-CAM on its last stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from podium import PodiumClient
from podium.client.output import result_record
from tests.integration.conftest import BROUGHT_ONNX_MODEL, OTHER_NETWORK_CLASSES, OTHER_NETWORKS
from tests.support.grad_cam import pearson
from tests.support.reference import eval_transform, reference_load_rgb, reference_predict

pytestmark = pytest.mark.integration
TRANSFORMS = {"efficientnet_b0": (256, 224, "bicubic"), "mobilenet_v3_small": (256, 224, "bilinear")}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from podium.samples import write_photo_folder

    folder = tmp_path_factory.mktemp("network-photos")
    write_photo_folder(folder, count=16, seed=5)
    return folder


def network(arch: str, checkpoints) -> torch.nn.Module:
    from export.architectures import architecture
    from export.checkpoint import build_model

    state = torch.load(checkpoints[arch], map_location="cpu", weights_only=True)
    return build_model(state, architecture(arch), source=arch)[0]


@pytest.mark.parametrize("arch", sorted(OTHER_NETWORKS))
def test_other_networks_answer_as_pytorch_does(cluster, photos, other_network_checkpoints, arch):
    name = OTHER_NETWORKS[arch]
    resize, crop, interpolation = TRANSFORMS[arch]
    with PodiumClient(cluster.gateway_address) as client:
        info = client.classes(name)
        job = client.submit_folder(photos, model=name)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
    assert list(info.classes) == OTHER_NETWORK_CLASSES and (info.resize, info.crop) == (resize, crop)
    assert len(records) == 16 and all(r["status"] == "ok" for r in records), records
    model = network(arch, other_network_checkpoints)
    expected = reference_predict(
        model, [photos / r["path"] for r in records], transform=eval_transform(resize, crop, interpolation)
    )
    tops = set()
    for record in records:
        want = expected[photos / record["path"]]
        got = {p["label"]: p["probability"] for p in record["top_k"]}
        top1 = record["top_k"][0]["label"]
        assert top1 == OTHER_NETWORK_CLASSES[int(want.argmax())], record["path"]
        for label, probability in got.items():
            assert abs(probability - want[OTHER_NETWORK_CLASSES.index(label)]) <= 1e-3, (record["path"], label)
        tops.add(top1)
    assert len(tops) >= 2  # the answers differ from photo to photo: the comparison means something


def test_efficientnet_maps_are_grad_cam_of_its_last_stage(cluster, photos, other_network_checkpoints):
    arch, name = "efficientnet_b0", OTHER_NETWORKS["efficientnet_b0"]
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_folder(photos, model=name, explain=True)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
    model = network(arch, other_network_checkpoints).eval()
    transform = eval_transform(*TRANSFORMS[arch])
    kept: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        kept["features"] = output
        output.register_hook(lambda gradient: kept.__setitem__("gradient", gradient))

    handle = model.features.register_forward_hook(keep)
    try:
        for record in records:
            logits = model(transform(reference_load_rgb(photos / record["path"]))[None])
            logits[0, int(logits.argmax())].backward()
            weights = kept["gradient"].mean(dim=(2, 3), keepdim=True)
            want = torch.relu((weights * kept["features"]).sum(dim=1))[0].detach().numpy()
            served = np.array(record["cam"]["values"]).reshape(record["cam"]["grid"])
            assert served.shape == (7, 7) and record["cam"]["class_index"] == int(logits.argmax())
            assert pearson(served, want) >= 0.99, (record["path"], json.dumps(record["cam"])[:200])
    finally:
        handle.remove()


def test_an_onnx_file_brought_as_is_answers_as_onnxruntime_on_the_original(cluster, photos, brought_onnx):
    from podium.stores.modelrepo import onnx_session

    with PodiumClient(cluster.gateway_address) as client:
        info = client.classes(BROUGHT_ONNX_MODEL)
        job = client.submit_folder(photos, model=BROUGHT_ONNX_MODEL)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
    assert not info.explains and (info.resize, info.crop) == (256, 224)
    assert len(records) == 16 and all(r["status"] == "ok" for r in records), records
    transform = eval_transform()
    inputs = np.stack([transform(reference_load_rgb(photos / r["path"])).numpy() for r in records])
    (logits,) = onnx_session(brought_onnx).run(["logits"], {"input": inputs})
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    for record, want in zip(records, expected, strict=True):
        assert record["top_k"][0]["label"] == OTHER_NETWORK_CLASSES[int(want.argmax())], record["path"]
        for p in record["top_k"]:
            assert abs(p["probability"] - want[OTHER_NETWORK_CLASSES.index(p["label"])]) <= 1e-3, record["path"]
