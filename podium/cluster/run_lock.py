"""One cluster per run directory: `podium up` holds a lock on the folder while it runs.

Two clusters in one folder would share Redis's data directory (the second failing on the
append-only file the first is writing) after the second had already replaced the first's
logs and wiped its workers' metrics folders. The lock is taken before anything in the
folder is touched; the kernel drops it when the holder exits, even by kill -9.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from podium.core.errors import FailedPrecondition

LOCK_FILENAME = "podium-up.lock"


class RunDirLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Hold the folder, or FailedPrecondition naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FailedPrecondition(
                f"another `podium up` (pid {holder}) is running in {self.path.parent}; nothing was started",
                hint="stop that one first, or give this one a folder of its own with --run-dir",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
