"""``python -m bench.decode_probe FILE exact|fast``: one image's decode cost in a fresh process.

Prints JSON: seconds per decode + preprocess (the mean of a few, after the first) and the
memory the first decode needed at its peak: the process's resident high-water mark
(VmHWM) afterwards, less its resident size just before. (Not ru_maxrss: Linux carries the
parent's peak across fork and exec into it, so a probe started by a big bench process
would report the bench's size.)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from podium.core.imaging import DecodeMode, Decoder

REPEATS = 3


def main(argv: list[str]) -> int:
    data, mode = Path(argv[0]).read_bytes(), DecodeMode(argv[1])
    decoder = Decoder(mode)
    before_kib = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    decoder.model_input(data)
    peak_kib = max(0, _high_water_kib() - before_kib)
    started = time.perf_counter()
    for _ in range(REPEATS):
        decoder.model_input(data)
    seconds = (time.perf_counter() - started) / REPEATS
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))
    return 0


def _high_water_kib() -> int:
    """This process's peak resident set (VmHWM, KiB): its own memory map's, since exec."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
