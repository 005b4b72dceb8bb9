"""ClusterStatus: whether Redis, the default model and the workers answer (GetStatus).

A reading pings every worker through the broker and asks Triton for the model, so it is
kept for a few seconds: a page refreshed by many people costs one reading, not many.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.model_service import ModelService
from podium.core.errors import PodiumError

READING_TTL_S = 3.0
WORKER_PING_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class StatusReading:
    redis_ok: bool
    model_ok: bool
    model: str
    model_error: str
    workers: list[str] = field(default_factory=list)
    checked_at: float = 0.0


class ClusterStatus:
    def __init__(
        self,
        redis_ping: Callable[[], bool],
        models: ModelService,
        worker_ping: Callable[[float], list[str]],
        ttl_s: float = READING_TTL_S,
    ) -> None:
        self._redis_ping = redis_ping
        self._models = models
        self._worker_ping = worker_ping
        self._ttl_s = ttl_s
        self._reading: StatusReading | None = None
        self._taken = 0.0  # time.monotonic() of the reading
        self._lock = threading.Lock()

    def read(self) -> StatusReading:
        with self._lock:  # one reading at a time; callers meanwhile wait for it
            if self._reading is None or time.monotonic() - self._taken > self._ttl_s:
                self._reading, self._taken = self._measure(), time.monotonic()
            return self._reading

    def _measure(self) -> StatusReading:
        try:
            redis_ok = bool(self._redis_ping())
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            redis_ok = False
        model, model_error = "", ""
        try:
            ref, _ = self._models.resolve("")
            model = str(ref)
        except PodiumError as exc:
            model_error = exc.message
        try:
            workers = sorted(self._worker_ping(WORKER_PING_TIMEOUT_S))
        except Exception:  # noqa: BLE001 - no broker, no workers to be seen
            workers = []
        return StatusReading(redis_ok, not model_error, model, model_error, workers, time.time())


def celery_ping(celery) -> Callable[[float], list[str]]:
    """The node names of the workers that answer a broadcast ping within the timeout."""

    def ping(timeout_s: float) -> list[str]:
        return [name for reply in celery.control.ping(timeout=timeout_s) for name in reply]

    return ping
