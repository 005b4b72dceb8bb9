"""Path-mode reads never leave the job's folder, nor the worker's data root."""

from __future__ import annotations

import os

import pytest

from worker.sources import OpenFolders, SourceError, read_file, read_under_root

# Every test runs twice: each read walking from the data root, and reads sharing the
# folders a chunk keeps open.
_FOLDERS: list[OpenFolders | None] = [None]


@pytest.fixture(autouse=True, params=["walk each file", "folders kept open"])
def folders(request):
    kept = OpenFolders() if request.param == "folders kept open" else None
    _FOLDERS[0] = kept
    yield kept
    if kept is not None:
        kept.close()
    _FOLDERS[0] = None


def read(root, rel: str, max_bytes: int = 100, data_root=None) -> bytes:
    return read_under_root([str(data_root or root)], os.path.realpath(root), rel, max_bytes, _FOLDERS[0])


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reads_a_file_inside_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"data")
    assert read(tmp_path, "a/x.jpg") == b"data"
    assert read(tmp_path / "a", "x.jpg", data_root=tmp_path) == b"data"


def test_refuses_escapes(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    (root / "link.jpg").symlink_to(secret)
    for rel in ("../secret.txt", "link.jpg", "/etc/passwd", "a//b.jpg", "./x.jpg"):
        with pytest.raises(SourceError, match="outside the data root"):
            read(root, rel)


def test_missing_and_too_large(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        read(tmp_path, "gone.jpg")
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    with pytest.raises(SourceError, match="more than the limit"):
        read(tmp_path, "big.jpg")


def test_a_folder_swapped_for_a_symlink_is_not_followed(tmp_path):
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(b"secret")
    root.mkdir()
    (root / "sub").symlink_to(tmp_path / "outside")  # was a folder at submission time
    with pytest.raises(SourceError, match="symbolic link"):
        read(root, "sub/x.jpg")


def test_the_job_folder_itself_swapped_for_a_symlink_is_not_followed(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(b"secret")
    (data / "finals").mkdir(parents=True)
    job_root = os.path.realpath(data / "finals")  # as the gateway resolved it at submission
    (data / "finals").rmdir()
    (data / "finals").symlink_to(tmp_path / "outside")
    with pytest.raises(SourceError, match="symbolic link"):
        read_under_root([str(data)], job_root, "x.jpg", 100)


def test_a_job_folder_outside_the_workers_data_roots_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.jpg").write_bytes(b"data")
    with pytest.raises(SourceError, match="outside this worker's data roots"):
        read_under_root([str(tmp_path / "data")], str(tmp_path / "elsewhere"), "x.jpg", 100)
    with pytest.raises(SourceError, match="outside this worker's data roots"):
        read_under_root([], str(tmp_path / "elsewhere"), "x.jpg", 100)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(SourceError, match="not a regular file"):
        read(tmp_path, "pipe.jpg")


def test_a_file_swapped_for_a_symlink_after_its_folder_was_opened_is_not_followed(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"x")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    assert read(root, "a/x.jpg") == b"x"  # the folder is open now, when kept
    (root / "a" / "y.jpg").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SourceError, match="symbolic link"):
        read(root, "a/y.jpg")


def test_kept_folders_are_closed_and_bounded(tmp_path):
    for folder in range(5):
        (tmp_path / f"f{folder}").mkdir()
        for name in range(3):
            (tmp_path / f"f{folder}" / f"{name}.jpg").write_bytes(b"%d" % name)
    before = open_descriptors()
    with OpenFolders(limit=2) as kept:
        for folder in range(5):
            for name in range(3):
                assert (
                    read_under_root([str(tmp_path)], str(tmp_path), f"f{folder}/{name}.jpg", 10, kept) == b"%d" % name
                )
        assert open_descriptors() == before + 2  # past the limit, a folder is closed after its file
    assert open_descriptors() == before


def test_a_manifest_path_reads_through_kept_folders(tmp_path, folders):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"data")
    assert read_file([str(tmp_path)], str(tmp_path / "a" / "x.jpg"), 10, folders) == b"data"
    with pytest.raises(SourceError, match="outside this worker's data roots"):
        read_file([str(tmp_path / "a")], str(tmp_path / "b" / "x.jpg"), 10, folders)
