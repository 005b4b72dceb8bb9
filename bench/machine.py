"""What the figures were measured on: CPU, cores, memory, load, software versions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from podium.stores.modelrepo.cpu_kernels import this_cpu

PACKAGES = ("onnxruntime", "numpy", "tritonclient", "nvidia-pytriton", "celery", "grpcio", "redis", "pillow")


def machine_info() -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "int8_kernels": this_cpu(),  # which onnxruntime INT8 kernels run: the INT8 target depends on it
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average_at_start": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "redis_server": _command_output(["redis-server", "--version"]),
        "git_commit": _command_output(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"])),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """1, 5 and 15-minute load: other people's work on a shared machine shows here."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_snapshot() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and its
    waited-for descendants). Two snapshots tell how much CPU *other* work took meanwhile."""
    own = os.times()
    mine = own.user + own.system + own.children_user + own.children_system
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, mine
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), mine


def other_cores_used(before: tuple[float, float], after: tuple[float, float], seconds: float) -> float | None:
    """Average cores used by processes outside this run between two snapshots.

    Valid once every child of the run has exited (their CPU time is counted only then)."""
    if seconds <= 0 or before[0] == 0.0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds)
