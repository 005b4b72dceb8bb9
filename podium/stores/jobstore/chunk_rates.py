"""How fast one worker process gets through a model's images, as the workers measure it,
and the chunk size the gateway makes of it: about ``chunk_seconds`` of one worker's time.

A chunk costs Celery and Redis a few milliseconds whatever its size, so a fast model wants
big chunks; a small job waits for the chunks running ahead of it, so a slow model wants
small ones. Each worker notes the rate of the chunk it just finished (images per second of
its wall time, Triton's waits included); a new job's chunks are sized from the median of
the last ``KEPT_RATES`` notes. The last note alone let one odd chunk size a whole job: a
chunk that waited on Triton gave the next job chunks of 16 on a fast model, and one whose
images were all in the result cache could give chunks of a thousand to a slow one.
"""

from __future__ import annotations

import statistics

import redis

from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import KEY_PREFIX

RATE_KEY_PREFIX = f"{KEY_PREFIX}:chunk-rates:"  # a list, newest first
RATE_TTL_S = 3600  # rates not measured for an hour say little about now
KEPT_RATES = 15
MIN_MEASURED_IMAGES = 8  # a smaller chunk's rate is mostly its fixed costs


@convert_redis_errors
class ChunkRates:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def note(self, model: str, images: int, seconds: float) -> None:
        """A worker finished ``images`` of ``model`` in ``seconds``."""
        if images >= MIN_MEASURED_IMAGES and seconds > 0:
            key = RATE_KEY_PREFIX + model
            with self._redis.pipeline() as pipe:
                pipe.lpush(key, f"{images / seconds:.3f}")
                pipe.ltrim(key, 0, KEPT_RATES - 1)
                pipe.expire(key, RATE_TTL_S)
                pipe.execute()

    def rate(self, model: str) -> float | None:
        """Images per second of one worker process on ``model`` (the median of the recent
        notes), or None if not measured lately."""
        rates = []
        for raw in self._redis.lrange(RATE_KEY_PREFIX + model, 0, KEPT_RATES - 1):
            try:
                rates.append(float(raw))
            except ValueError:
                continue
        return statistics.median(rates) if rates else None


def chunk_size_for(rate: float | None, chunk_seconds: float, least: int, most: int) -> int:
    """About ``chunk_seconds`` of work at ``rate``, a power of two within [least, most];
    ``least`` when there is no rate or sizing by time is off (``chunk_seconds`` 0)."""
    if rate is None or rate <= 0 or chunk_seconds <= 0:
        return least
    size = 1
    while size * 2 <= rate * chunk_seconds:
        size *= 2
    return max(least, min(most, size))
