"""One `podium up` per run directory: the second refuses before it touches anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.cluster import ClusterSettings, LocalCluster
from podium.cluster.run_lock import LOCK_FILENAME, RunDirLock
from podium.core.errors import FailedPrecondition


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path):
    first = RunDirLock(tmp_path)
    first.acquire()
    assert (tmp_path / LOCK_FILENAME).read_text().strip() == str(os.getpid())
    with pytest.raises(FailedPrecondition, match=rf"pid {os.getpid()}") as refused:
        RunDirLock(tmp_path).acquire()
    assert "--run-dir" in refused.value.hint
    first.release()
    again = RunDirLock(tmp_path)
    again.acquire()  # free once released
    again.release()


def test_a_second_cluster_in_the_same_folder_starts_nothing(tmp_path: Path):
    """The unit tier refuses to start processes: reaching Redis's start would fail this test."""
    (tmp_path / "redis.log").write_text("the first cluster's log\n")
    holder = RunDirLock(tmp_path)
    holder.acquire()
    try:
        second = LocalCluster(ClusterSettings(run_dir=tmp_path, web=False))
        with pytest.raises(FailedPrecondition, match="another `podium up`"):
            second.start()
        assert (tmp_path / "redis.log").read_text() == "the first cluster's log\n"
        assert (tmp_path / LOCK_FILENAME).read_text().strip() == str(os.getpid())  # the holder's pid kept
    finally:
        holder.release()
