"""Resident memory of process trees, read from /proc: once, or its peak while a block runs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Self

_PAGE = os.sysconf("SC_PAGE_SIZE")
MEMBERS_EVERY_S = 1.0  # how often PeakRss looks for new processes in its trees


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    return trees_rss([pid])


def trees_rss(pids: list[int]) -> int:
    """Resident bytes of the processes ``pids`` and all their descendants, summed."""
    return _rss(tree_members(pids))


def tree_members(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants, found from each thread's ``children`` in /proc:
    only the trees are read, not every process of the machine (a walk of /proc costs
    milliseconds, which a sampler beside a measured job would take from it)."""
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            threads = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue  # gone
        for thread in threads:
            try:
                todo += [int(child) for child in (thread / "children").read_text().split()]
            except FileNotFoundError:
                if thread.exists():  # a kernel without CONFIG_PROC_CHILDREN: walk all of /proc
                    return _members_by_walk(pids)
            except OSError:
                continue
    return found


def _members_by_walk(pids: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
        except OSError:
            continue
    found, todo = [], list(pids)
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


class PeakRss:
    """``with PeakRss(pids) as peak:`` samples the trees' summed RSS every ``interval_s``
    while the block runs; ``peak.bytes`` is the largest sample (a peak shorter than the
    interval may be missed: the interval is short next to a chunk of camera photos)."""

    def __init__(self, pids: list[int], interval_s: float = 0.05) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def __enter__(self) -> Self:
        self.bytes = trees_rss(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.bytes = max(self.bytes, trees_rss(self.pids))

    def _sample(self) -> None:
        members, found_at = tree_members(self.pids), time.monotonic()
        while not self._stop.wait(self.interval_s):
            if time.monotonic() - found_at >= MEMBERS_EVERY_S:  # a pool may replace a child
                members, found_at = tree_members(self.pids), time.monotonic()
            self.bytes = max(self.bytes, _rss(members))
