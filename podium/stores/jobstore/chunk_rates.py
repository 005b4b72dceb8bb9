"""How fast one worker process gets through a model's images, as the workers measure it,
and the chunk size the gateway makes of it: about ``chunk_seconds`` of one worker's time.

A chunk costs Celery and Redis a few milliseconds whatever its size, so a fast model wants
big chunks; a small job waits for the chunks running ahead of it, so a slow model wants
small ones. Each worker notes the rate of the chunk it just finished (images per second of
its wall time, Triton's waits included); a new job's chunks are sized from the last note.
"""

from __future__ import annotations

import redis

from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import KEY_PREFIX

RATE_KEY_PREFIX = f"{KEY_PREFIX}:chunk-rate:"
RATE_TTL_S = 3600  # a rate not measured for an hour says little about now
MIN_MEASURED_IMAGES = 8  # a smaller chunk's rate is mostly its fixed costs


@convert_redis_errors
class ChunkRates:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def note(self, model: str, images: int, seconds: float) -> None:
        """A worker finished ``images`` of ``model`` in ``seconds``."""
        if images >= MIN_MEASURED_IMAGES and seconds > 0:
            self._redis.set(RATE_KEY_PREFIX + model, f"{images / seconds:.3f}", ex=RATE_TTL_S)

    def rate(self, model: str) -> float | None:
        """Images per second of one worker process on ``model``, or None if not measured lately."""
        raw = self._redis.get(RATE_KEY_PREFIX + model)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None


def chunk_size_for(rate: float | None, chunk_seconds: float, least: int, most: int) -> int:
    """About ``chunk_seconds`` of work at ``rate``, a power of two within [least, most];
    ``least`` when there is no rate or sizing by time is off (``chunk_seconds`` 0)."""
    if rate is None or rate <= 0 or chunk_seconds <= 0:
        return least
    size = 1
    while size * 2 <= rate * chunk_seconds:
        size *= 2
    return max(least, min(most, size))
