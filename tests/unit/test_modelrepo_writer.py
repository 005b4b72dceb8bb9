"""Model repository writer: layout, versions, and nothing half-written on failure (fast)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from podium.core.modelmeta import ModelMetadata
from podium.stores.modelrepo import ModelRepositoryError
from podium.stores.modelrepo.config import build_model_config
from podium.stores.modelrepo.layout import next_version
from podium.stores.modelrepo.targets import CPU_TARGET, PYTHON_MODEL_SOURCE
from podium.stores.modelrepo.writer import write_model_version

FIDELITY = {"reference": "pytorch-fp32", "images": ["a"], "top1_agreement": 1.0, "max_abs_diff": 0.0}


def metadata(classes: list[str]) -> ModelMetadata:
    return ModelMetadata(model_name="toy", target="cpu", classes=classes, exported_at="2025-01-01T00:00:00+00:00")


def write(repository: Path, tmp_path: Path, classes: list[str], extra_files=None):
    onnx_file = tmp_path / "work" / "model.onnx"
    onnx_file.parent.mkdir(exist_ok=True)
    onnx_file.write_bytes(b"not really onnx")
    meta = metadata(classes)
    return write_model_version(
        repository,
        build_model_config(meta, CPU_TARGET),
        metadata=meta,
        onnx_file=onnx_file,
        fidelity=FIDELITY,
        extra_files=CPU_TARGET.extra_files if extra_files is None else extra_files,
    )


def test_first_version_layout(tmp_path: Path):
    repository = tmp_path / "repo"
    written = write(repository, tmp_path, ["cat", "dog"])
    model_dir = repository / "toy"
    assert (written.model_dir, written.version, written.onnx_path) == (model_dir, 1, model_dir / "1" / "model.onnx")
    assert sorted(p.relative_to(repository).as_posix() for p in repository.rglob("*")) == [
        "toy",
        "toy/1",
        "toy/1/fidelity.json",
        "toy/1/model.onnx",
        "toy/1/model.py",
        "toy/1/podium.json",
        "toy/config.pbtxt",
        "toy/labels.txt",
    ]
    assert (model_dir / "labels.txt").read_text() == "cat\ndog\n"
    assert (model_dir / "1" / "model.py").read_bytes() == PYTHON_MODEL_SOURCE.read_bytes()
    assert ModelMetadata.from_json((model_dir / "1" / "podium.json").read_text()) == metadata(["cat", "dog"])
    assert json.loads((model_dir / "1" / "fidelity.json").read_text()) == FIDELITY
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "toy"
    assert not (tmp_path / "work" / "model.onnx").exists()  # moved, not copied
    # Readable by a Triton running as another user.
    assert stat.S_IMODE((model_dir / "1").stat().st_mode) == 0o755


def test_next_version_keeps_old_ones_and_updates_config(tmp_path: Path):
    repository = tmp_path / "repo"
    write(repository, tmp_path, ["cat", "dog"])
    (repository / "toy" / "notes").mkdir()  # non-numeric folders are not versions
    written = write(repository, tmp_path, ["cat", "dog", "eel"])
    assert written.version == 2
    assert (repository / "toy" / "1" / "model.onnx").exists()
    assert (repository / "toy" / "labels.txt").read_text() == "cat\ndog\neel\n"
    config = text_format.Parse((repository / "toy" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert list(config.output[0].dims) == [3]
    assert not [p for p in (repository / "toy").iterdir() if p.name.startswith(".")]


def test_next_version_counts_numerically(tmp_path: Path):
    for name in ("1", "2", "10", "latest"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 11
    assert next_version(tmp_path / "latest") == 1


def test_failed_first_export_leaves_nothing(tmp_path: Path):
    repository = tmp_path / "repo"
    with pytest.raises(FileNotFoundError):
        write(repository, tmp_path, ["cat"], extra_files={"model.py": tmp_path / "missing.py"})
    assert list(repository.iterdir()) == []  # no model folder: Triton would refuse to start


def test_failed_later_export_leaves_no_version_or_staging(tmp_path: Path):
    repository = tmp_path / "repo"
    write(repository, tmp_path, ["cat"])
    before = sorted(p.relative_to(repository) for p in repository.rglob("*"))
    with pytest.raises(FileNotFoundError):
        write(repository, tmp_path, ["cat", "dog"], extra_files={"model.py": tmp_path / "missing.py"})
    assert sorted(p.relative_to(repository) for p in repository.rglob("*")) == before
    assert (repository / "toy" / "labels.txt").read_text() == "cat\n"


def test_model_name_taken_by_a_file(tmp_path: Path):
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "toy").write_text("")
    with pytest.raises(ModelRepositoryError, match="not a folder"):
        write(repository, tmp_path, ["cat"])
