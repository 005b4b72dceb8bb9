"""Explained jobs with the real parts: the served maps are Grad-CAM of the checkpoint.

The default model has the fine-tuning head (Linear, ReLU, Dropout, Linear): its maps must
match an autograd Grad-CAM of the same checkpoint, computed here through torchvision's own
forward on torchvision's eval transform. The second model has a plain ``fc`` head: its maps
are CAM, and CAM's identity (the map's mean plus the bias is the logit) holds on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from podium import PodiumClient
from podium.client.output import result_record
from tests.integration.conftest import PLAIN_HEAD_MODEL
from tests.support.cli import run_cli
from tests.support.grad_cam import grad_cam_of_inputs, pearson
from tests.support.reference import build_resnet50, eval_transform, reference_load_rgb

pytestmark = pytest.mark.integration
MIN_R = 0.99
OVERLAY_SIZE = (448, 478)  # the 224-pixel crop at twice its size, and the caption band


@dataclass
class Explained:
    job_id: str
    records: list[dict]
    heatmaps: Path
    stderr: str


def autograd_maps(checkpoint: Path, folder: Path, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    model = build_resnet50(torch.load(checkpoint, map_location="cpu", weights_only=True))
    inputs = torch.stack([eval_transform()(reference_load_rgb(folder / rel)) for rel in paths])
    return grad_cam_of_inputs(model, inputs)


def served_map(record: dict) -> np.ndarray:
    return np.array(record["cam"]["values"]).reshape(record["cam"]["grid"])


@pytest.fixture(scope="module")
def explained(cluster, test_folder, tmp_path_factory) -> Explained:
    out = tmp_path_factory.mktemp("explained")
    done = run_cli(
        "submit", str(test_folder.root), "--wait", "--explain", "--heatmaps", str(out / "maps"),
        "--output", str(out / "results.jsonl"), "--gateway", cluster.gateway_address,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    job_id = done.stdout.split("job ")[1].split()[0]
    return Explained(job_id, records, out / "maps", done.stderr)


def test_every_ok_line_carries_a_map_that_is_grad_cam_of_the_checkpoint(explained, test_folder, checkpoint):
    by_path = {r["path"]: r for r in explained.records}
    assert all("cam" not in r for r in explained.records if r["status"] != "ok")
    valid = test_folder.valid
    expected, classes = autograd_maps(checkpoint, test_folder.root, valid)
    r, flat = [], []
    for rel, want, cls in zip(valid, expected, classes, strict=True):
        cam = by_path[rel]["cam"]
        assert cam["grid"] == [7, 7] and len(cam["values"]) == 49, rel
        assert min(cam["values"]) >= 0.0, rel
        if max(cam["values"]) == 0.0:  # nothing in the image speaks for the class: Grad-CAM is 0 too
            assert want.max() == 0.0, rel
            flat.append(rel)
        else:
            assert max(cam["values"]) == 1.0, rel
        assert cam["class_index"] == by_path[rel]["top_k"][0]["index"] == cls, rel
        r.append(pearson(served_map(by_path[rel]), want))
    # The test checkpoint's backbone is random: 19 of its 79 maps are flat (a trained one's rarely are).
    assert len(flat) <= len(valid) // 3, f"too many flat maps to tell anything: {flat}"
    r = np.array(r)
    # The map travels as 1/255 steps: r stays far above the contract's 0.99 on every image.
    assert (r >= MIN_R).mean() >= 0.95 and r.min() >= MIN_R, f"Pearson r: min {r.min():.4f}, mean {r.mean():.4f}"


def test_heatmaps_are_written_for_every_ok_image_mirroring_the_folder(explained, test_folder):
    ok = [r["path"] for r in explained.records if r["status"] == "ok"]
    written = sorted(p.relative_to(explained.heatmaps).as_posix() for p in explained.heatmaps.rglob("*.png"))
    assert len(written) == len(ok)
    for rel in ok:
        target = explained.heatmaps / Path(rel).with_suffix(".png")
        if not target.exists():  # two files that differ only in their extension
            target = explained.heatmaps / (rel + ".png")
        with Image.open(target) as overlay:
            assert overlay.format == "PNG" and overlay.size == OVERLAY_SIZE, rel
            pixels = np.asarray(overlay.convert("RGB"), dtype=np.int16)
        assert pixels[:448].std() > 5, rel  # a picture, not a blank
    assert f"{len(ok)} heat maps written" in " ".join(explained.stderr.split())


def test_results_draws_the_same_heatmaps_later(explained, cluster, tmp_path):
    done = run_cli(
        "results", explained.job_id, "--heatmaps", str(tmp_path / "again"), "--gateway", cluster.gateway_address
    )
    assert done.returncode == 0, done.stderr
    again = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*.png"))
    first = sorted(p.relative_to(explained.heatmaps) for p in explained.heatmaps.rglob("*.png"))
    assert again == first and again
    # The lines still come out on stdout, maps and all.
    assert [json.loads(line) for line in done.stdout.splitlines()] == explained.records


def test_a_plain_job_carries_no_map_and_heatmaps_say_why(cluster, test_folder, tmp_path):
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_folder(test_folder.root)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
    assert not any("cam" in r for r in records)
    done = run_cli("results", job.id, "--heatmaps", str(tmp_path / "m"), "--gateway", cluster.gateway_address)
    assert done.returncode != 0 and "without --explain" in done.stderr and "Traceback" not in done.stderr


def test_the_plain_head_serves_cam_and_its_identity_holds(cluster, plain_head_checkpoint, photos_for_cam):
    from export.activation_map import ExplainingModel, logits_and_class_gradient, weighted_sum

    with PodiumClient(cluster.gateway_address) as client:
        info = client.classes(PLAIN_HEAD_MODEL)
        job = client.submit_folder(photos_for_cam, model=PLAIN_HEAD_MODEL, explain=True)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
        (classified,) = client.classify([photos_for_cam / records[0]["path"]], model=PLAIN_HEAD_MODEL, explain=True)
    assert info.explains and (info.resize, info.crop) == (256, 224)
    paths = [r["path"] for r in records]
    assert all(r["status"] == "ok" for r in records)
    expected, classes = autograd_maps(plain_head_checkpoint, photos_for_cam, paths)
    for record, want, cls in zip(records, expected, classes, strict=True):
        assert record["cam"]["class_index"] == cls
        assert pearson(served_map(record), want) >= MIN_R, record["path"]
    assert classified.cam.class_index == records[0]["cam"]["class_index"]
    # CAM: with a plain head, the unscaled map averages (plus the bias) to the logit.
    model = build_resnet50(torch.load(plain_head_checkpoint, map_location="cpu", weights_only=True))
    inputs = torch.stack([eval_transform()(reference_load_rgb(photos_for_cam / rel)) for rel in paths])
    explaining = ExplainingModel(model)
    with torch.no_grad():
        features = torch.nn.Sequential(*[getattr(model, n) for n in ("conv1", "bn1", "relu", "maxpool")])(inputs)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            features = getattr(model, name)(features)
        pooled = torch.flatten(model.avgpool(features), 1)
        logits, weights = logits_and_class_gradient(explaining.classifier.fc, pooled)
        raw = weighted_sum(weights, features)
    top1 = logits.argmax(dim=1)
    rebuilt = raw.mean(dim=(1, 2)) + model.fc.bias[top1]
    torch.testing.assert_close(rebuilt, logits.gather(1, top1[:, None])[:, 0], atol=1e-3, rtol=1e-5)
    peaks = torch.relu(raw).amax(dim=(1, 2), keepdim=True)
    scaled = (torch.relu(raw) / peaks).numpy()
    for record, want in zip(records, scaled, strict=True):
        assert np.abs(served_map(record) - want).max() <= 1 / 255 + 1e-3, record["path"]


@pytest.fixture(scope="module")
def photos_for_cam(tmp_path_factory) -> Path:
    from podium.samples import write_photo_folder

    folder = tmp_path_factory.mktemp("cam-photos")
    write_photo_folder(folder, count=12, seed=11)
    return folder
