"""podium train's parts without a training run: the network's heads, freezing, the data layout."""

from __future__ import annotations

import pytest
import torch

from export.head import infer_head
from podium.core.errors import InvalidArgument, NotFound
from podium.train.data import find_data_set
from podium.train.network import build_network, set_trainable, trainable_stages


@pytest.mark.parametrize(("head", "keys"), [("sequential", {"fc.0.weight", "fc.3.weight"}), ("fc", {"fc.weight"})])
def test_heads_are_what_export_infers(head, keys):
    model = build_network(7, head, "none", dropout=0.3)
    state = model.state_dict()
    assert keys <= set(state)
    assert infer_head(state).num_classes == 7


def test_freezing_leaves_the_head_and_the_named_stages_trainable():
    model = build_network(3, "sequential", "none", dropout=0.3)
    assert set_trainable(model, []) == []
    assert all(p.requires_grad == n.startswith("fc.") for n, p in model.named_parameters())
    backbone = set_trainable(model, trainable_stages("layer3,layer4"))
    names = {n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("fc.")}
    assert names and all(n.split(".")[0] in ("layer3", "layer4") for n in names)
    assert len(backbone) == len(names)
    with pytest.raises(InvalidArgument, match="--unfreeze"):
        trainable_stages("layer9")


@pytest.mark.parametrize("head", ["sequential", "fc"])
def test_other_networks_train_with_the_head_export_infers(head):
    from export.architectures import architecture

    model = build_network(5, head, "none", dropout=0.3, arch="efficientnet_b0")
    state = model.state_dict()
    assert (
        {"classifier.0.weight", "classifier.3.weight"} <= set(state)
        if head == "sequential"
        else "classifier.weight" in state
    )
    spec = infer_head(state, architecture("efficientnet_b0"))
    assert spec.num_classes == 5 and spec.linears[0].in_features == 1280


def test_an_efficientnet_unfreezes_its_last_feature_blocks():
    from podium.train.network import stages_of

    assert stages_of("resnet50") == ["layer4", "layer3", "layer2", "layer1"]
    assert stages_of("efficientnet_b0")[:2] == ["features.8", "features.7"]
    assert trainable_stages("last") == ["layer4"] and trainable_stages("last", "efficientnet_b0") == ["features.8"]
    model = build_network(3, "sequential", "none", dropout=0.3, arch="efficientnet_b0")
    backbone = set_trainable(model, trainable_stages("features.7,features.8", "efficientnet_b0"), "efficientnet_b0")
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("classifier.", "features.7.", "features.8.")) for n in names)
    assert len(backbone) == len([n for n in names if not n.startswith("classifier.")])
    with pytest.raises(InvalidArgument, match=r"name parts of efficientnet_b0's backbone \(features.8, features.7"):
        trainable_stages("layer4", "efficientnet_b0")


def test_local_imagenet_weights_fill_the_backbone(tmp_path):
    source = build_network(1000, "fc", "none", dropout=0.0)
    torch.save(source.state_dict(), tmp_path / "imagenet.pth")
    model = build_network(3, "sequential", str(tmp_path / "imagenet.pth"), dropout=0.3)
    assert torch.equal(model.state_dict()["conv1.weight"], source.state_dict()["conv1.weight"])
    with pytest.raises(InvalidArgument, match="no such file"):
        build_network(3, "fc", str(tmp_path / "missing.pth"), dropout=0.0)


def test_the_data_layout_is_checked(tmp_path):
    with pytest.raises(NotFound, match="no train/ and valid/"):
        find_data_set(tmp_path)
    for rel in ("train/b/1.jpg", "train/a/1.jpg", "valid/a/1.jpg", "test/b/2.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    data = find_data_set(tmp_path)
    assert data.classes == ["a", "b"] and [label for _, label in data.test.samples] == [1]
    (tmp_path / "valid/zebra").mkdir()
    with pytest.raises(InvalidArgument, match="classes that train/ has not: zebra"):
        find_data_set(tmp_path)
