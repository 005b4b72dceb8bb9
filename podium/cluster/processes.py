"""Child processes with a readiness check, started in order and stopped in reverse."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.errors import Unavailable

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0
_READY_POLL_S = 0.25


class ProcessFailed(Unavailable):
    """A child could not start or become ready; the message names its log file."""

    hint = "the log named above says why; `podium up --help` lists the settings"


def dying_with_parent(argv: list[str]) -> list[str]:
    """argv wrapped so that the child gets SIGTERM when its parent dies, however it dies,
    and a killed `podium up` or test run leaves no servers behind.

    util-linux's setpriv sets PR_SET_PDEATHSIG and execs the command; doing it ourselves in
    a preexec_fn would force a plain fork(), which aborts in a process that runs gRPC
    threads. Linux sends the signal when the *thread* that started the child exits, so
    children are started from long-lived threads."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class ManagedProcess:
    """One child process in its own process group, so that its children stop with it."""

    name: str
    argv: list[str]
    log_path: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed below
        try:
            self.popen = subprocess.Popen(
                dying_with_parent(self.argv),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        except OSError as exc:
            raise ProcessFailed(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        finally:
            log_file.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if not self.alive:
                raise ProcessFailed(
                    f"{self.name} exited with code {self.popen.returncode} while starting; "
                    f"its log {self.log_path} ends with:\n{tail(self.log_path)}"
                )
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001, S110 - any failure of the check means "not ready yet"
                pass
            if time.monotonic() > deadline:
                raise ProcessFailed(
                    f"{self.name} was not ready after {self.ready_timeout_s:.0f} s; "
                    f"its log {self.log_path} ends with:\n{tail(self.log_path)}"
                )
            time.sleep(_READY_POLL_S)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after timeout_s."""
        if self.popen is None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", self.name, timeout_s)
        # Children of the group (e.g. Celery pool processes) may outlive their parent.
        self.signal_group(signal.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
