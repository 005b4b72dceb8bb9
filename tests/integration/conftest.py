"""Session fixtures with the real parts: a fitted checkpoint exported into a model
repository, and a LocalCluster (redis-server, tritonserver, Celery workers, gateway)."""

from __future__ import annotations

import os
import sys
import threading
import urllib.request
from pathlib import Path

import boto3
import numpy as np
import pytest

from podium.cluster import ClusterSettings, LocalCluster
from podium.cluster.processes import ManagedProcess, free_port
from podium.samples import write_photo_folder
from tests.support.faults import logs_tail, run_job
from tests.support.images import TestFolder, make_test_folder
from tests.support.reference import build_resnet50, reference_predict

MODEL_NAME = "resnet50_sports"
# A second model in the same repository, with a plain Linear(2048, N) head (the stand-in's),
# so that both head types are served: its maps are CAM, the default model's Grad-CAM.
PLAIN_HEAD_MODEL = "resnet50_plain"
PLAIN_HEAD_CLASSES = [f"plain_{i}" for i in range(8)]
# Two other networks in the same repository (tests/integration/test_any_classifier.py):
# EfficientNet-B0 (bicubic) with the source projects' Sequential head, MobileNetV3-Small with
# torchvision's own head (Hardswish).
OTHER_NETWORK_CLASSES = [f"sport_{i}" for i in range(8)]
OTHER_NETWORKS = {"efficientnet_b0": "effnet_b0_sports", "mobilenet_v3_small": "mobilenet_v3_sports"}
# The MobileNetV3 again, as a float NCHW ONNX file from torch.onnx.export, served through --onnx.
BROUGHT_ONNX_MODEL = "mobilenet_v3_onnx"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet50 whose answers differ from image to image (head fitted on photos)."""
    from tests.support.reference import fit_checkpoint

    return fit_checkpoint(tmp_path_factory.mktemp("checkpoint") / "resnet50_sports.pt")


@pytest.fixture(scope="session")
def plain_head_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.stand_in import write_steady_checkpoint

    return write_steady_checkpoint(tmp_path_factory.mktemp("plain") / "plain.pt", PLAIN_HEAD_CLASSES)


@pytest.fixture(scope="session")
def other_network_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Steady checkpoints of the other networks, by architecture name (labels beside each)."""
    import torch
    from torch import nn

    from export.stand_in import steady_network

    folder = tmp_path_factory.mktemp("other-networks")
    classes = len(OTHER_NETWORK_CLASSES)
    heads = {"efficientnet_b0": nn.Sequential(nn.Linear(1280, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, classes))}
    written = {}
    for arch in OTHER_NETWORKS:
        path = folder / f"{arch}.pt"
        torch.save(steady_network(arch, classes, head=heads.get(arch)).state_dict(), path)
        Path(f"{path}.labels.txt").write_text("".join(f"{c}\n" for c in OTHER_NETWORK_CLASSES), encoding="utf-8")
        written[arch] = path
    return written


@pytest.fixture(scope="session")
def model_repository(
    tmp_path_factory: pytest.TempPathFactory,
    checkpoint: Path,
    plain_head_checkpoint: Path,
    other_network_checkpoints: dict[str, Path],
    brought_onnx: Path,
) -> Path:
    from export import export_model, export_onnx

    repo = tmp_path_factory.mktemp("model_repository")
    export_model(checkpoint=checkpoint, model_repository=repo, model_name=MODEL_NAME)
    export_model(checkpoint=plain_head_checkpoint, model_repository=repo, model_name=PLAIN_HEAD_MODEL)
    for arch, path in other_network_checkpoints.items():  # only the checkpoint: the network is detected
        export_model(checkpoint=path, model_repository=repo, model_name=OTHER_NETWORKS[arch])
    labels = Path(f"{other_network_checkpoints['mobilenet_v3_small']}.labels.txt")
    export_onnx(onnx_path=brought_onnx, model_repository=repo, labels=labels, model_name=BROUGHT_ONNX_MODEL)
    return repo


@pytest.fixture(scope="session")
def brought_onnx(other_network_checkpoints: dict[str, Path]) -> Path:
    """The steady MobileNetV3-Small as torch.onnx.export writes it: float NCHW in, logits out."""
    import torch

    from export.architectures import architecture
    from export.checkpoint import build_model

    arch = architecture("mobilenet_v3_small")
    state = torch.load(other_network_checkpoints[arch.name], map_location="cpu", weights_only=True)
    model = build_model(state, arch, source=arch.name)[0]
    path = other_network_checkpoints[arch.name].with_suffix(".onnx")
    torch.onnx.export(
        model, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway's only data root for path-mode jobs."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def test_folder(data_root: Path) -> TestFolder:
    return make_test_folder(data_root / "mixed")


@pytest.fixture(scope="session")
def reference(checkpoint: Path, test_folder: TestFolder) -> dict[str, np.ndarray]:
    """PyTorch probabilities of every valid image, by relative path (torchvision eval transform)."""
    import torch

    model = build_resnet50(torch.load(checkpoint, map_location="cpu", weights_only=True))
    paths = [test_folder.root / rel for rel in test_folder.valid]
    predicted = reference_predict(model, paths)
    return {rel: predicted[path] for rel, path in zip(test_folder.valid, paths)}


@pytest.fixture(scope="session")
def cluster(model_repository: Path, data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=2,
        gateway_port=0,
        web=False,  # no page: tests/integration/test_web.py tests it
        # exact: the served answers must equal torchvision's to 1e-3 (fast is measured in make bench)
        # result_cache off: every job here must take the model's path (the same folder is
        # submitted again and again); tests/integration/test_jobs_archive.py tests the cache.
        service={
            "model_name": MODEL_NAME,
            "data_roots": str(data_root),
            "chunk_size": 8,
            "decode": "exact",
            "result_cache": False,
        },
        run_dir=tmp_path_factory.mktemp("cluster"),
    )
    with LocalCluster(settings) as running:
        yield running


# Short on purpose, so that redelivery, reconciliation and idle limits happen within a test.
FAST_RECOVERY = {
    "visibility_timeout_s": 20,
    "triton_timeout_s": 3,
    "stall_timeout_s": 25,
    "reconcile_interval_s": 2,
    "chunk_lease_s": 6,
    "upload_stall_s": 20,
    "upload_idle_s": 5,
    "results_sink_outage_limit_s": 20,
}


FAULT_JOB_IMAGES = 160


@pytest.fixture(scope="session")
def faults_data_root(tmp_path_factory) -> Path:
    """The faulty cluster's data root, for path-mode jobs under faults."""
    return tmp_path_factory.mktemp("faults-data")


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_photo_folder(folder, count=FAULT_JOB_IMAGES)
    return folder


@pytest.fixture(scope="session")
def baseline(faulty_cluster, photos) -> dict[str, dict]:
    """Results of a fault-free run: what every faulty run must end with."""
    job, records = run_job(faulty_cluster, photos, fault=None)
    assert job.failed == 0
    return records


@pytest.fixture(scope="session")
def faulty_cluster(model_repository, faults_data_root, tmp_path_factory):
    """A cluster for fault injection, supervised like `podium up`: killed children restart."""
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=2,
        gateway_port=0,
        web=False,  # no page: tests/integration/test_web.py tests it
        run_dir=tmp_path_factory.mktemp("faults"),
        # No result cache: a fault must land while images still go to the model.
        service={"chunk_size": 8, "data_roots": str(faults_data_root), "result_cache": False, **FAST_RECOVERY},
        worker_args=["--include", "tests.support.poison"],
    )
    cluster = LocalCluster(settings)
    cluster.start()
    stop = threading.Event()
    supervisor = threading.Thread(target=cluster.supervise, args=(stop.is_set,), daemon=True)
    supervisor.start()
    try:
        yield cluster
    finally:
        stop.set()
        supervisor.join(60)
        cluster.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Each phase's report kept on the test (``rep_call``: whether the test itself failed);
    a failed test that ran on the fault cluster reports the last lines of its children's logs."""
    report = (yield).get_result()
    setattr(item, f"rep_{report.when}", report)
    cluster = getattr(item, "funcargs", {}).get("faulty_cluster")
    if report.failed and cluster is not None:
        report.sections.append(("the fault cluster's logs, last lines", logs_tail(cluster)))


AWS = {"AWS_ACCESS_KEY_ID": "podium-test", "AWS_SECRET_ACCESS_KEY": "podium-test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3-API server on a free loopback port, its address in boto3's variables for
    this process and every child (the cluster's workers and gateway, the CLI)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ManagedProcess(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        tmp_path_factory.mktemp("moto") / "moto.log",
        lambda: _answers(endpoint),
        ready_timeout_s=60,
    )
    saved = {name: os.environ.get(name) for name in (*AWS, "AWS_ENDPOINT_URL")}
    os.environ.update(AWS | {"AWS_ENDPOINT_URL": endpoint})
    server.start()
    try:
        server.wait_ready()
        yield boto3.client("s3")
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint, timeout=1):
            return True
    except OSError:
        return False
