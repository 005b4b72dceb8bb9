"""The model loop as a user runs it: train, export, serve (podium up), classes; and evaluate a
labelled folder through the running service, its numbers checked against scikit-learn on an
independent PyTorch reference's answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from export.labels import DEFAULT_LABELS, read_labels
from podium.cluster import ClusterSettings, LocalCluster
from tests.support.cli import run_cli
from tests.support.labelled import labelled_for_the_fitted_checkpoint, make_data_set, mislabel
from tests.support.reference import build_resnet50, reference_predict

pytestmark = pytest.mark.integration


def podium(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    done = run_cli(*args, timeout_s=timeout_s)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_a_trained_checkpoint_exports_serves_and_lists_its_classes(tmp_path):
    data = make_data_set(tmp_path / "data", classes=3, per_split={"train": 6, "valid": 3, "test": 3})
    checkpoint = tmp_path / "out" / "tiny.pt"
    trained = podium("train", str(data), "--output", str(checkpoint), "--weights", "none", "--epochs", "1",
                     "--batch-size", "8", "--workers", "0", "--freeze-epochs", "1")  # fmt: skip
    assert "test accuracy" in trained.stdout
    for suffix in ("", ".labels.txt", ".history.json", ".curves.png"):
        assert Path(f"{checkpoint}{suffix}").is_file(), suffix
    repo = tmp_path / "repo"
    podium("export", "--checkpoint", str(checkpoint), "--model-repository", str(repo), "--model-name", "tiny")
    settings = ClusterSettings(
        model_repository=repo,
        workers=1,
        gateway_port=0,
        web=False,
        run_dir=tmp_path / "run",
        service={"model_name": "tiny"},
    )
    with LocalCluster(settings) as cluster:
        listed = podium("classes", "--gateway", cluster.gateway_address)
        assert [line.split()[-1] for line in listed.stdout.splitlines()] == ["astronaut", "chelsea", "coffee"]
        submitted = podium("submit", str(data / "test"), "--wait", "--gateway", cluster.gateway_address, "--show", "0")
        assert "9 classified, 0 failed" in submitted.stdout


def test_evaluate_through_podium_up_equals_scikit_learn_on_a_pytorch_reference(cluster, checkpoint, tmp_path):
    folder = labelled_for_the_fitted_checkpoint(tmp_path / "labelled")
    moved = mislabel(folder, share=0.1)
    assert len(moved) == 4
    out = tmp_path / "evaluation"
    done = podium("evaluate", str(folder), "--report", str(out), "--gateway", cluster.gateway_address)
    assert "accuracy" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert (out / "confusion_matrix.png").stat().st_size > 10_000 and (out / "report.html").is_file()

    labels = report["labels"]
    assert labels == read_labels(DEFAULT_LABELS)
    files = sorted(folder.rglob("*.jpg"))
    model = build_resnet50(torch.load(checkpoint, map_location="cpu", weights_only=True))
    reference = reference_predict(model, files)  # torchvision's eval transform, in PyTorch
    y_true = [labels.index(path.parent.name) for path in files]
    y_pred = [int(np.argmax(reference[path])) for path in files]
    assert report["n_images"] == len(files) and report["n_failed"] == 0
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert 0 < report["accuracy"] < 1  # the moved images are judged against their (wrong) folder
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(len(labels)), zero_division=0
    )
    for i, name in enumerate(labels):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        ), name
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(len(labels))).tolist()
    low, high = report["accuracy_ci95"]
    assert low < report["accuracy"] < high
