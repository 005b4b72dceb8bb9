"""How long a server (Triton, the results sink) has been failing, as one worker process sees it."""

from __future__ import annotations

import threading
import time


class OutageClock:
    """When a server started failing for this process (None while it answers); thread-safe."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def failing(self, gap_s: float | None = None) -> float:
        """Note a failure; returns how long the outage has lasted, in seconds. ``gap_s``: a
        failure this long after the one before starts a new outage (when no success is seen
        between outages: the process may have had no work for the server meanwhile)."""
        with self._lock:
            now = time.monotonic()
            if self._since is None or (gap_s is not None and now - self._last > gap_s):
                self._since = now
            self._last = now
            return now - self._since

    def answered(self) -> None:
        with self._lock:
            self._since = None
