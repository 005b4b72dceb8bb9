"""--labels-from DATASET_DIR: class names as torchvision's ImageFolder numbers them (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from torchvision.datasets.folder import find_classes

from export import ExportError
from export.labels import dataset_classes


def test_same_classes_as_torchvision_image_folder(tmp_path: Path):
    for name in ("tennis", "Archery", "air hockey", "bmx", "_misc", ".hidden", "10", "9", "été"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_bytes(b"x")
    (tmp_path / "empty class").mkdir()
    (tmp_path / "readme.txt").write_text("a file, not a class")
    (tmp_path / "tennis" / "nested").mkdir()  # below a class: not a class
    classes = dataset_classes(tmp_path)
    assert classes == find_classes(str(tmp_path))[0]
    assert classes[:3] == [".hidden", "10", "9"]  # byte order, hidden folders included, as in training
    assert "readme.txt" not in classes and "nested" not in classes


def test_missing_or_classless_dataset(tmp_path: Path):
    with pytest.raises(ExportError, match="does not exist"):
        dataset_classes(tmp_path / "nope")
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match="no class sub-folders"):
        dataset_classes(tmp_path)
