"""CPU lists, the shares `podium up` deals its workers, and what each worker is told."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from podium.cluster import ClusterSettings, LocalCluster
from podium.core.cpus import cpu_shares, format_cpu_list, parse_cpu_list
from podium.core.errors import InvalidArgument
from worker.settings import WorkerSettings


def test_cpu_lists_read_and_write_as_linux_writes_them():
    assert parse_cpu_list("0-2,5") == [0, 1, 2, 5]
    assert parse_cpu_list(" 3 , 1") == [1, 3]
    assert format_cpu_list([5, 0, 1, 2]) == "0-2,5"
    assert format_cpu_list([7]) == "7"


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "1,,2", "0x1"])
def test_a_malformed_cpu_list_says_how_to_write_one(text: str):
    with pytest.raises(InvalidArgument, match="CPU list"):
        parse_cpu_list(text)


def _cpu_sets(count: int, highest: int) -> list[set[int]]:
    rng = random.Random(20261206)
    return [set(rng.sample(range(highest + 1), rng.randint(1, highest + 1))) for _ in range(count)]


@pytest.mark.parametrize("cpus", _cpu_sets(50, 255))
def test_format_and_parse_round_trip(cpus: set[int]):
    assert parse_cpu_list(format_cpu_list(list(cpus))) == sorted(cpus)


@pytest.mark.parametrize("parts", [1, 2, 3, 7, 16, 80])
@pytest.mark.parametrize("cpus", _cpu_sets(12, 63))
def test_shares_use_every_cpu_and_never_give_one_to_two_workers_when_they_need_not(cpus: set[int], parts: int):
    shares = cpu_shares(list(cpus), parts)
    assert len(shares) == parts and all(shares)
    assert {cpu for share in shares for cpu in share} == cpus
    if parts <= len(cpus):  # disjoint, as even as they go
        assert sum(len(share) for share in shares) == len(cpus)
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    else:  # a CPU each in turn
        assert all(len(share) == 1 for share in shares)


def test_two_workers_on_two_cores_get_one_core_each():
    assert cpu_shares([0, 1], 2) == [[0], [1]]
    assert cpu_shares([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]


def test_the_worker_setting_is_a_checked_cpu_list():
    assert WorkerSettings(cpu_affinity="2,0-1").cpu_affinity == "0-2"
    assert WorkerSettings().cpu_affinity == ""
    with pytest.raises(ValueError, match="CPU list"):
        WorkerSettings(cpu_affinity="one")


def _affinities(cluster: LocalCluster) -> list[str]:
    return [cluster._worker_environment(n)["PODIUM_CPU_AFFINITY"] for n in range(1, cluster.settings.workers + 1)]


def test_podium_up_gives_each_worker_its_own_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("podium.cluster.local.usable_cpus", lambda: [0, 1, 2, 3, 4, 5])
    monkeypatch.delenv("PODIUM_CPU_AFFINITY", raising=False)
    cluster = LocalCluster(ClusterSettings(run_dir=tmp_path, web=False, workers=3))
    assert _affinities(cluster) == ["0-1", "2-3", "4-5"]


def test_the_operator_s_choice_or_no_pinning_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("podium.cluster.local.usable_cpus", lambda: [0, 1])
    monkeypatch.delenv("PODIUM_CPU_AFFINITY", raising=False)
    unpinned = LocalCluster(ClusterSettings(run_dir=tmp_path / "a", web=False, pin_workers=False))
    assert _affinities(unpinned) == ["", ""]
    chosen = LocalCluster(ClusterSettings(run_dir=tmp_path / "b", web=False, service={"cpu_affinity": "1"}))
    assert _affinities(chosen) == ["1", "1"]


def test_where_there_is_no_affinity_call_nothing_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("podium.cluster.local.usable_cpus", list)  # as on macOS
    monkeypatch.delenv("PODIUM_CPU_AFFINITY", raising=False)
    cluster = LocalCluster(ClusterSettings(run_dir=tmp_path, web=False))
    assert _affinities(cluster) == ["", ""]
