"""How long a server (Triton, the results sink) has been failing, as one worker process sees it."""

from __future__ import annotations

import threading
import time


class OutageClock:
    """When a server started failing for this process (None while it answers); thread-safe."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._lock = threading.Lock()

    def failing(self) -> float:
        """Note a failure; returns how long the outage has lasted, in seconds."""
        with self._lock:
            now = time.monotonic()
            if self._since is None:
                self._since = now
            return now - self._since

    def answered(self) -> None:
        with self._lock:
            self._since = None
