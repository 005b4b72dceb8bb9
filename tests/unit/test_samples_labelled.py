"""The labelled folders made from the bundled photographs (the demo trains on one)."""

from __future__ import annotations

import pytest
from PIL import Image

from podium.samples import bundled_photos
from podium.samples.labelled import write_labelled_set


def test_one_class_per_photograph_in_every_split_and_the_same_seed_the_same_files(tmp_path):
    classes = ("astronaut", "coffee")
    write_labelled_set(tmp_path / "a", classes, {"train": 3, "test": 2}, seed=4, colour=0.2)
    write_labelled_set(tmp_path / "b", classes, {"train": 3, "test": 2}, seed=4, colour=0.2)
    for split, count in (("train", 3), ("test", 2)):
        for name in classes:
            files = sorted((tmp_path / "a" / split / name).glob("*.jpg"))
            assert len(files) == count
            assert all(f.read_bytes() == (tmp_path / "b" / split / name / f.name).read_bytes() for f in files)
            with Image.open(files[0]) as image:
                assert image.mode == "RGB" and 180 <= image.width < 320
    assert set(bundled_photos()) >= set(classes)
    with pytest.raises(ValueError, match="no bundled photograph called nothing"):
        write_labelled_set(tmp_path / "c", ("nothing",), {"train": 1})
