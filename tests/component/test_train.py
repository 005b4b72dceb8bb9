"""A real (short) training run on the CPU: what it writes, that export serves it, that --resume goes on."""

from __future__ import annotations

import json

import pytest
import torch

from export import export_model
from export.head import infer_head
from podium.train import TrainOptions, train_model
from tests.support.labelled import make_data_set

TINY = TrainOptions(weights="none", epochs=1, batch_size=8, workers=0, freeze_epochs=1)


@pytest.fixture(scope="module")
def data_set(tmp_path_factory):
    return make_data_set(tmp_path_factory.mktemp("data"), classes=3, per_split={"train": 6, "valid": 3, "test": 3})


def test_one_epoch_writes_what_export_reads(data_set, tmp_path):
    output = tmp_path / "run" / "model.pt"
    result = train_model(data_set, output, TINY)
    assert result.classes == ["astronaut", "chelsea", "coffee"] and result.test_accuracy is not None
    for suffix in ("", ".labels.txt", ".history.json", ".curves.png"):
        assert (tmp_path / "run" / f"model.pt{suffix}").is_file(), suffix
    assert not (tmp_path / "run" / "model.pt.resume.pt").exists()  # finished: nothing to resume
    history = json.loads((tmp_path / "run" / "model.pt.history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1] and history["classes"] == result.classes
    assert set(history["epochs"][0]) >= {
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_accuracy",
        "lr",
        "seconds",
    }
    state = torch.load(output, weights_only=True)
    assert infer_head(state).num_classes == 3
    exported = export_model(checkpoint=output, model_repository=tmp_path / "repo", model_name="tiny")
    assert exported.metadata.classes == result.classes  # the labels beside the checkpoint


class Interrupted(Exception):
    pass


def test_resume_goes_on_from_the_last_epoch(data_set, tmp_path):
    output, options = tmp_path / "model.pt", TrainOptions(**{**TINY.__dict__, "epochs": 2})

    def stop_after_the_first(epoch) -> None:
        raise Interrupted  # as Ctrl-C would, between epochs

    with pytest.raises(Interrupted):
        train_model(data_set, output, options, on_epoch=stop_after_the_first)
    assert (tmp_path / "model.pt.resume.pt").is_file()
    seen = []
    result = train_model(data_set, output, options, resume=True, on_epoch=lambda e: seen.append(e.epoch))
    assert seen == [2]  # epoch 1 was not trained again
    assert [e.epoch for e in result.history] == [1, 2]
    assert not (tmp_path / "model.pt.resume.pt").exists()


def test_an_efficientnet_trains_and_exports_from_its_checkpoint_alone(data_set, tmp_path):
    """--arch efficientnet_b0: the head phase, then its last feature block; the export detects
    the network, infers the seeds' head and gives it EfficientNet's bicubic transform."""
    output = tmp_path / "effnet.pt"
    options = TrainOptions(**{**TINY.__dict__, "arch": "efficientnet_b0", "epochs": 2})
    result = train_model(data_set, output, options)
    assert [e.phase for e in result.history] == ["head", "fine-tune last"]
    exported = export_model(checkpoint=output, model_repository=tmp_path / "repo", model_name="effnet")
    meta = exported.metadata
    assert (meta.architecture, meta.preprocessing.interpolation, meta.classes) == (
        "efficientnet_b0",
        "bicubic",
        result.classes,
    )
    assert meta.head == "Sequential(Linear(1280, 512), ReLU, Dropout, Linear(512, 3))"
    assert exported.fidelity["top1_agreement"] == 1.0 and exported.fidelity["cam"]["min_r"] >= 0.99
