"""Long-lived RPCs (WatchJob, GetResults with follow, SubmitUpload) each hold one of the
server's threads for their life. ``StreamSlots`` bounds them, in total and per caller, so
that health checks, GetJob and other short calls always find a free thread; a stream
beyond the bound is answered RESOURCE_EXHAUSTED at once. ``IdleWatch`` cancels an upload
that sends nothing for a while, which frees its thread and fails its job.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self, TypeVar

from podium.core.errors import ResourceExhausted

T = TypeVar("T")


class StreamSlots:
    def __init__(self, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        with self._lock:
            if sum(self._open.values()) >= self.total:
                raise ResourceExhausted(
                    f"the gateway has {self.total} streams open (watches, result streams, uploads); try again shortly"
                )
            if self._open[caller] >= self.per_caller:
                raise ResourceExhausted(
                    f"this API key has {self.per_caller} streams open already; close some (or wait for jobs to end)"
                )
            self._open[caller] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[caller] -= 1
                if not self._open[caller]:
                    del self._open[caller]

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())


class IdleWatch:
    """Calls ``on_idle`` once when the caller has waited ``idle_s`` seconds for the client.

    Only time spent waiting for the client's next message counts: while the gateway works
    on what it received (asks Triton about the model, writes Redis, holds the stream for
    backpressure) the client cannot be idle, however long that takes."""

    def __init__(self, idle_s: float, on_idle: Callable[[], None]) -> None:
        self._idle_s = idle_s
        self._on_idle = on_idle
        self._since: float | None = time.monotonic()  # waiting for the first message
        self._stop = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name="podium-upload-idle", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def waiting(self) -> None:
        """The caller now waits for the client's next message: the idle clock runs."""
        self._since = time.monotonic()

    def busy(self) -> None:
        """The caller works on what it received: the idle clock stops."""
        self._since = None

    def touch(self) -> None:
        """Still alive (a message came, or backpressure holds the stream): the clock starts again."""
        if self._since is not None:
            self._since = time.monotonic()

    def received(self, requests: Iterator[T]) -> Iterator[T]:
        """``requests``, with the clock running only while the next one is awaited."""
        while True:
            self.waiting()
            request = next(requests, None)
            self.busy()
            if request is None:
                return
            yield request

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self._idle_s / 4)):
            since = self._since
            if since is not None and time.monotonic() - since > self._idle_s:
                self.fired = True
                self._on_idle()
                return
