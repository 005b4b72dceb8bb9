"""Path-mode reads never leave the job's folder."""

from __future__ import annotations

import pytest

from worker.sources import SourceError, read_under_root


def test_reads_a_file_inside_the_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"data")
    assert read_under_root(str(tmp_path), "a/x.jpg", 100) == b"data"


def test_refuses_escapes(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    (root / "link.jpg").symlink_to(secret)
    for rel in ("../secret.txt", "link.jpg", "/etc/passwd"):
        with pytest.raises(SourceError, match="outside the data root"):
            read_under_root(str(root), rel, 100)


def test_missing_and_too_large(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        read_under_root(str(tmp_path), "gone.jpg", 100)
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    with pytest.raises(SourceError, match="more than the limit"):
        read_under_root(str(tmp_path), "big.jpg", 100)


def test_a_folder_swapped_for_a_symlink_is_not_followed(tmp_path):
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(b"secret")
    root.mkdir()
    (root / "sub").symlink_to(tmp_path / "outside")  # was a folder at submission time
    with pytest.raises(SourceError, match="symbolic link"):
        read_under_root(str(root), "sub/x.jpg", 100)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(SourceError, match="not a regular file"):
        read_under_root(str(tmp_path), "pipe.jpg", 100)
