"""Resident memory of process trees, read from /proc: once, or its peak while a block runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Self


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    return trees_rss([pid])


def trees_rss(pids: list[int]) -> int:
    """Resident bytes of the processes ``pids`` and all their descendants, summed."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "VmRSS: 0 kB")
        rss[int(entry.name)] = int(line.split()[1]) * 1024
    total, todo = 0, list(pids)
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
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
        while not self._stop.wait(self.interval_s):
            self.bytes = max(self.bytes, trees_rss(self.pids))
