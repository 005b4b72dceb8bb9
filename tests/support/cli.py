"""The ``podium`` command as a user runs it: a fresh process, its output captured."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """``python -m podium ARGS``, wide enough that rich does not wrap messages."""
    return subprocess.run(
        [sys.executable, "-m", "podium", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )
