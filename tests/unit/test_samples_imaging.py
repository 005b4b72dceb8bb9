"""The serving decode + transform against the independent reference, on the hostile folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T

from podium.core import imaging
from tests.support.images import TestFolder, make_test_folder
from tests.support.reference import reference_load_rgb


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> TestFolder:
    return make_test_folder(tmp_path_factory.mktemp("hostile"))


def test_decode_and_preprocess_match_the_reference_pixel_for_pixel(folder: TestFolder) -> None:
    crop = T.Compose([T.Resize(256), T.CenterCrop(224)])
    mismatched = []
    for rel in folder.valid:
        path: Path = folder.root / rel
        served = imaging.preprocess(imaging.decode_rgb(path.read_bytes()))
        expected = np.asarray(crop(reference_load_rgb(path)), dtype=np.uint8)
        if served.shape != expected.shape or not np.array_equal(served, expected):
            mismatched.append(rel)
    assert mismatched == []


def test_broken_files_give_decode_errors(folder: TestFolder) -> None:
    for rel in folder.broken:
        with pytest.raises(imaging.ImageDecodeError):
            imaging.decode_rgb((folder.root / rel).read_bytes())
