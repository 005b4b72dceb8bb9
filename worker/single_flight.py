"""SingleFlight: threads asking for the same thing at once share one computation.

The result cache answers a duplicate that arrives after its twin was classified; this
answers the one that arrives while its twin is still in flight (two copies in one chunk).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, Future[T]] = {}

    def run(self, key: str, compute: Callable[[], T]) -> tuple[T, bool]:
        """(compute()'s value, whether it was another caller's): one call per key at a time."""
        with self._lock:
            future = self._calls.get(key)
            leader = future is None
            if leader:
                future = self._calls[key] = Future()
        assert future is not None
        if not leader:
            return future.result(), True
        try:
            value = compute()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(value)
            return value, False
        finally:
            with self._lock:
                del self._calls[key]
