"""``python -m bench.decode_probe FILE exact|fast``: one image's decode cost in a fresh process.

Prints JSON: seconds per decode + preprocess (the mean of a few, after the first) and the
memory the first decode needed at its peak: the process's peak resident size (ru_maxrss)
afterwards, less its resident size just before.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from imaging import DecodeMode, Decoder

REPEATS = 3


def main(argv: list[str]) -> int:
    data, mode = Path(argv[0]).read_bytes(), DecodeMode(argv[1])
    decoder = Decoder(mode)
    before_kib = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    decoder.model_input(data)
    peak_kib = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib)
    started = time.perf_counter()
    for _ in range(REPEATS):
        decoder.model_input(data)
    seconds = (time.perf_counter() - started) / REPEATS
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
