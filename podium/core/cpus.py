"""CPU lists (Linux's "0-3,8" notation) and the shares of a machine's CPUs that `podium up`
gives its worker processes.

Why workers get their own CPUs: one process's decoding threads spread over cores that other
processes also use cost more CPU per image than the same decodes in separate processes, for
no more images per second; kept to its own cores, a worker keeps its threads, interpreter
and buffers in those cores' caches (measured in docs/performance.md, 00k).
"""

from __future__ import annotations

import os

from podium.core.errors import InvalidArgument


def parse_cpu_list(text: str) -> list[int]:
    """A Linux CPU list ("0-2,5") -> [0, 1, 2, 5]; InvalidArgument for anything else (empty included)."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise InvalidArgument(f"not a CPU list: {text!r} (write it as 0-3,8)")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise InvalidArgument(f"not a CPU list: {text!r} ({part} runs backwards)")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpu_list(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"."""
    runs: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def cpu_shares(cpus: list[int], parts: int) -> list[list[int]]:
    """``cpus`` dealt to ``parts`` processes: neighbours together, as even as they go (the first
    shares one larger where they do not divide); with more parts than CPUs, a CPU each in turn."""
    cpus = sorted(set(cpus))
    if not cpus or parts < 1:
        raise InvalidArgument(f"cannot share {len(cpus)} CPUs among {parts} processes")
    if parts >= len(cpus):
        return [[cpus[number % len(cpus)]] for number in range(parts)]
    size, larger = divmod(len(cpus), parts)
    shares, start = [], 0
    for number in range(parts):
        end = start + size + (number < larger)
        shares.append(cpus[start:end])
        start = end
    return shares


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask, which a container's cpuset limits);
    empty where the system has no affinity calls (macOS): nothing is pinned there."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def keep_to_cpus(text: str) -> None:
    """Run this thread, and the threads and processes it starts from now on, on ``text``'s CPUs."""
    cpus = parse_cpu_list(text)
    if not hasattr(os, "sched_setaffinity"):
        raise InvalidArgument(f"cannot run on CPUs {text}: this system cannot pin a process; leave the CPU list empty")
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:  # none of them this process may use (a container's cpuset, say)
        allowed = format_cpu_list(usable_cpus())
        raise InvalidArgument(f"cannot run on CPUs {text} ({exc.strerror}); this process may use {allowed}") from None
