"""Where the CPU goes: CPU seconds of this process and every descendant, by component.

Read from /proc before and after a job, the difference tells how many CPU milliseconds
each part of Podium (gateway, workers, Triton, its Python backend, Redis) spent per image.
On a 2-core machine that is the whole story of a throughput figure.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
# cmdline fragment -> component; the first match wins, so the stub precedes tritonserver.
COMPONENTS = (
    ("triton_python_backend_stub", "Triton Python backend (onnxruntime)"),
    ("tritonserver", "tritonserver (gRPC, batcher)"),
    ("celery", "Celery workers (decode, gRPC)"),
    ("-m gateway", "gateway"),
    ("redis-server", "redis-server"),
    ("bench.single_image_server", "single-image service"),
)
BENCH = "bench client (upload, watch)"
OTHER = "other children"


def component_cpu_seconds(root_pid: int | None = None) -> dict[str, float]:
    """CPU seconds (user + system) of ``root_pid`` and its live descendants, summed by component."""
    root = root_pid or os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[float, str]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        parsed = _read(entry)
        if parsed is None:
            continue
        ppid, seconds, cmdline = parsed
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (seconds / tick, cmdline)
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if pid not in stats:
            continue
        seconds, cmdline = stats[pid]
        label = BENCH if pid == root else _component(cmdline)
        totals[label] = totals.get(label, 0.0) + seconds
    return totals


def per_image_ms(before: dict[str, float], after: dict[str, float], images: int) -> dict[str, float]:
    """CPU milliseconds per image by component between two snapshots (largest first)."""
    spent = {key: (after.get(key, 0.0) - before.get(key, 0.0)) * 1000.0 / max(images, 1) for key in after}
    return dict(sorted(((k, v) for k, v in spent.items() if v > 0), key=lambda item: -item[1]))


def _component(cmdline: str) -> str:
    return next((label for fragment, label in COMPONENTS if fragment in cmdline), OTHER)


def _read(entry: Path) -> tuple[int, float, str] | None:
    try:
        stat = (entry / "stat").read_text()
        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None  # exited meanwhile, or not ours to read
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    ppid, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return ppid, float(utime + stime), cmdline
