"""Path-mode reads never leave the job's folder, nor the worker's data root."""

from __future__ import annotations

import os

import pytest

from worker.sources import SourceError, read_under_root


def read(root, rel: str, max_bytes: int = 100, data_root=None) -> bytes:
    return read_under_root([str(data_root or root)], os.path.realpath(root), rel, max_bytes)


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
