"""Fast checks of the demo photographs, the hostile test folder and the reference's cheap parts.

Nothing here fits the test checkpoint (integration tests do, once per session).
"""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch import nn
from torchvision.models import resnet50

from podium.samples import bundled_photos, write_photo_folder
from podium.samples.__main__ import main as samples_main
from podium.samples.photos import _bundled_arrays
from tests.support.images import EXIF_ORIENTATION_TAG, TestFolder, make_test_folder
from tests.support.reference import (
    build_resnet50,
    eval_transform,
    reference_load_rgb,
    reference_predict,
)


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- samples -----------------------------------------------------------------------------------


def test_bundled_photos_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    _bundled_arrays.cache_clear()  # really reload, under the patch
    photos = bundled_photos()
    assert len(photos) >= 10
    assert {"astronaut", "coffee", "chelsea", "rocket", "camera"} <= set(photos)
    for name, image in photos.items():
        assert image.mode in ("RGB", "L"), name
        assert min(image.size) >= 190, name


def test_bundled_photos_are_fresh_copies() -> None:
    first = bundled_photos()["astronaut"]
    first.paste((0, 0, 0), (0, 0, 64, 64))
    assert bundled_photos()["astronaut"].getpixel((0, 0)) != (0, 0, 0)


def test_write_photo_folder(tmp_path: Path) -> None:
    count = len(bundled_photos()) + 8
    paths = write_photo_folder(tmp_path / "a", count=count, seed=3)
    assert len(paths) == len(set(paths)) == count
    assert sorted(paths) == sorted(p for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert (tmp_path / "a" / "astronaut.jpg").is_file()
    formats = Counter()
    for path in paths:
        with Image.open(path) as image:
            image.load()
            formats[image.format] += 1
            assert 90 <= max(image.size) <= 1500, path
    assert formats["JPEG"] > count // 2 and formats["PNG"] >= 1
    assert any(len(p.relative_to(tmp_path / "a").parts) >= 3 for p in paths)  # nested
    # Same seed, same bytes.
    write_photo_folder(tmp_path / "b", count=count, seed=3)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_samples_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert samples_main([str(tmp_path), "--count", "3"]) == 0
    assert "wrote 3 files" in capsys.readouterr().out
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 3


# --- the hostile test folder -------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> TestFolder:
    return make_test_folder(tmp_path_factory.mktemp("hostile"))


def _open(folder: TestFolder, rel: str) -> Image.Image:
    image = Image.open(folder.root / rel)
    image.load()
    return image


def test_folder_lists_every_file_once(folder: TestFolder) -> None:
    on_disk = {p.relative_to(folder.root).as_posix() for p in folder.root.rglob("*") if p.is_file()}
    listed = [*folder.valid, *folder.broken, *folder.hidden]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert len(folder.valid) >= 60


def test_hidden_files_are_hidden_and_others_are_not(folder: TestFolder) -> None:
    def is_hidden(rel: str) -> bool:
        return any(part.startswith(".") for part in rel.split("/"))

    assert {".DS_Store", ".hidden_dir/secret.jpg"} <= set(folder.hidden)
    assert all(is_hidden(rel) for rel in folder.hidden)
    assert not any(is_hidden(rel) for rel in folder.visible)


def test_valid_files_cover_formats_modes_and_sizes(folder: TestFolder) -> None:
    formats: Counter[str] = Counter()
    modes: set[tuple[str, str]] = set()
    sizes: set[tuple[int, int]] = set()
    for rel in folder.valid:
        with _open(folder, rel) as image:
            formats[image.format] += 1
            modes.add((image.format, image.mode))
            sizes.add(image.size)
    assert set(formats) == {"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"}
    for expected in [
        ("JPEG", "L"),
        ("JPEG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("PNG", "LA"),
        ("JPEG", "CMYK"),
        ("TIFF", "CMYK"),
        ("PNG", "I;16"),
        ("TIFF", "I;16"),
        ("GIF", "P"),
    ]:
        assert expected in modes, expected
    assert {(8, 8), (2000, 37), (37, 2000), (120, 1)} <= sizes
    long_sides = [max(size) for size in sizes]
    assert min(long_sides) == 8 and max(long_sides) == 2000


def test_transparency_is_real(folder: TestFolder) -> None:
    with _open(folder, "modes/rgba_transparent.png") as image:
        alpha = np.asarray(image.getchannel("A"))
        assert alpha.min() == 0 and alpha.max() > 200
    with _open(folder, "modes/palette_transparent.png") as image:
        assert image.info.get("transparency") == 255
        assert (np.asarray(image) == 255).any()


def test_sixteen_bit_images_use_the_full_range(folder: TestFolder) -> None:
    for rel in ("modes/grey16.png", "modes/grey16.tiff", "modes/grey16_big_endian.tiff"):
        with _open(folder, rel) as image:
            assert image.mode in ("I;16", "I;16B"), rel
            pixels = np.asarray(image)
            assert pixels.min() == 0 and pixels.max() == 65535, rel
            assert len(np.unique(pixels)) > 4096, rel  # genuinely 16-bit, not 8-bit x 257


def test_animated_gif_has_three_distinct_frames(folder: TestFolder) -> None:
    for rel in (
        "animated/three_frames.gif",
        "animated/three_frames.webp",
        "animated/three_frames.png",
    ):
        with Image.open(folder.root / rel) as image:
            assert getattr(image, "n_frames", 1) == 3, rel
            first = np.asarray(image.convert("RGB"), dtype=np.int16)
            image.seek(1)
            second = np.asarray(image.convert("RGB"), dtype=np.int16)
            assert np.abs(first - second).mean() > 20, rel


def test_exif_orientations_two_to_eight(folder: TestFolder) -> None:
    seen = set()
    for rel in folder.valid:
        if not rel.startswith("orientation/"):
            continue
        with _open(folder, rel) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
            upright = ImageOps.exif_transpose(image)
        seen.add(orientation)
        assert upright.size != image.size or orientation in (2, 3, 4)
        # Not symmetric: ignoring the tag gives visibly different pixels.
        if upright.size == image.size:
            diff = np.abs(np.asarray(upright, np.int16) - np.asarray(image.convert("RGB"), np.int16))
            assert diff.mean() > 10, rel
    assert seen == {2, 3, 4, 5, 6, 7, 8}


def test_naming_quirks_and_nesting(folder: TestFolder) -> None:
    assert "no_extension" in folder.valid
    assert any(rel.endswith(".JPG") for rel in folder.valid)
    assert any(" " in rel and not rel.isascii() for rel in folder.valid)
    assert max(rel.count("/") for rel in folder.valid) == 4  # nested/a/b/c/file: 3 below nested


def test_broken_files_do_not_decode(folder: TestFolder) -> None:
    assert {Path(rel).name for rel in folder.broken} >= {
        "empty.jpg",
        "truncated.jpg",
        "truncated.png",
    }
    for rel in folder.broken:
        with pytest.raises((OSError, SyntaxError, ValueError)):
            reference_load_rgb(folder.root / rel)


def test_make_test_folder_is_deterministic(folder: TestFolder, tmp_path: Path) -> None:
    again = make_test_folder(tmp_path, seed=0)
    assert (again.valid, again.broken, again.hidden) == (folder.valid, folder.broken, folder.hidden)
    assert _digests(tmp_path) == _digests(folder.root)


# --- reference (cheap parts) -------------------------------------------------------------------


def test_reference_load_scales_sixteen_bit(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 257, 32767, 65407, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    rgb = reference_load_rgb(tmp_path / "g16.png")
    assert rgb.mode == "RGB"
    assert np.asarray(rgb)[0, :, 0].tolist() == [0, 0, 1, 1, 127, 255, 255]


def test_reference_load_applies_orientation_and_first_frame(folder: TestFolder) -> None:
    image = reference_load_rgb(folder.root / "orientation/exif_6_astronaut.jpg")
    with Image.open(folder.root / "orientation/exif_6_astronaut.jpg") as raw:
        assert image.size == (raw.height, raw.width)
    frames = reference_load_rgb(folder.root / "animated/three_frames.gif")
    with Image.open(folder.root / "animated/three_frames.gif") as raw:
        assert np.array_equal(np.asarray(frames), np.asarray(raw.convert("RGB")))


def _random_state_dict(head: nn.Module) -> dict[str, torch.Tensor]:
    model = resnet50(weights=None)
    model.fc = head
    return model.state_dict()


@pytest.mark.parametrize(
    "head",
    [
        nn.Linear(2048, 7),
        nn.Sequential(nn.Linear(2048, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 5)),
    ],
    ids=["linear", "sequential"],
)
def test_build_resnet50_infers_the_head(head: nn.Module) -> None:
    state = _random_state_dict(head)
    model = build_resnet50(state)
    assert not model.training
    assert type(model.fc) is type(head)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_build_resnet50_rejects_a_headless_state_dict() -> None:
    state = {k: v for k, v in _random_state_dict(nn.Linear(2048, 3)).items() if not k.startswith("fc.")}
    with pytest.raises(ValueError):
        build_resnet50(state)


def test_reference_predict_matches_a_manual_forward(folder: TestFolder) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
    paths = [folder.root / rel for rel in folder.valid[:5]]
    probabilities = reference_predict(model, paths, batch_size=2)
    assert list(probabilities) == paths
    transform = eval_transform()
    for path in paths:
        row = probabilities[path]
        assert row.dtype == np.float32 and row.shape == (4,)
        with torch.no_grad():
            expected = torch.softmax(model(transform(reference_load_rgb(path))[None]), 1)[0]
        np.testing.assert_allclose(row, expected.numpy(), rtol=0, atol=1e-6)
