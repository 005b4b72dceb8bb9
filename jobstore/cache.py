"""ResultCache: image outcomes by content, so that a byte-identical copy is classified once.

The key is the sha256 of the image's bytes with everything else that shapes the answer:
the model's name and version (a version pins its export: target, precision and
preprocessing), the worker's decode mode (fast decoding changes ~3 % of answers), top-k
and whether a map was asked for; and whose it is: answers are kept per owner unless the
operator shares them (``PODIUM_RESULT_CACHE_SCOPE=shared``, which lets one tenant learn
whether another classified the same bytes). Entries expire after
a TTL, and their number is bounded: an index scored by insertion time drops the oldest
beyond ``max_entries`` (Redis runs with noeviction, so the cache must bound itself).
Only outcomes of a pinned model version are cached: "the newest version" changes meaning.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from jobs import ImageOutcome
from jobstore.errors import convert_redis_errors
from jobstore.schema import KEY_PREFIX

CACHE_PREFIX = f"{KEY_PREFIX}:cache"
CACHE_INDEX_KEY = f"{CACHE_PREFIX}:index"
# The scope of answers every owner shares (owners are digests: no clash with this name).
SHARED_SCOPE = "shared"
ANONYMOUS_SCOPE = "anonymous"  # the owner of jobs submitted without API keys

# KEYS: the entry, the index. ARGV: outcome, ttl_s, now, max_entries. The entry and its
# place in the index are written together; the oldest entries beyond the bound go.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
return 1
"""


@dataclass(frozen=True)
class CacheKey:
    """What makes two answers the same: the image's bytes and the request's shape."""

    model_name: str
    model_version: str
    top_k: int
    explain: bool
    decode: str = "exact"
    scope: str = SHARED_SCOPE  # an owner's digest, or SHARED_SCOPE

    def of(self, data: bytes) -> str:
        return self.of_digest(hashlib.sha256(data).hexdigest())

    def of_digest(self, digest: str) -> str:
        """The key of bytes whose sha256 (hex) is ``digest``."""
        shape = f"{self.model_name}:{self.model_version}:{self.decode}:{self.top_k}:{int(self.explain)}"
        return f"{CACHE_PREFIX}:{self.scope}:{shape}:{digest}"


@convert_redis_errors
class ResultCache:
    def __init__(self, client: redis.Redis, ttl_s: int = 7 * 24 * 3600, max_entries: int = 200_000) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._put = client.register_script(_PUT)

    def get(self, key: str) -> ImageOutcome | None:
        raw = self._redis.get(key)
        return None if raw is None else ImageOutcome.decode(raw)

    def get_many(self, keys: list[str]) -> dict[str, ImageOutcome]:
        """The cached answers among ``keys``, in one round trip."""
        if not keys:
            return {}
        found = self._redis.mget(keys)
        return {key: ImageOutcome.decode(raw) for key, raw in zip(keys, found, strict=True) if raw is not None}

    def put(self, key: str, outcome: ImageOutcome) -> None:
        """Keep an answer (only a successful one: errors may be passing)."""
        if outcome.ok:
            self._put(keys=[key, CACHE_INDEX_KEY], args=[outcome.encode(), self._ttl_s, time.time(), self._max_entries])

    def put_many(self, answers: list[tuple[str, ImageOutcome]]) -> None:
        """``put`` of each, in one round trip (a pipeline of the same script)."""
        kept = [(key, outcome) for key, outcome in answers if outcome.ok]
        if not kept:
            return
        now = time.time()
        with self._redis.pipeline(transaction=False) as pipe:
            for key, outcome in kept:
                self._put(
                    keys=[key, CACHE_INDEX_KEY],
                    args=[outcome.encode(), self._ttl_s, now, self._max_entries],
                    client=pipe,
                )
            pipe.execute()

    def size(self) -> int:
        return int(self._redis.zcard(CACHE_INDEX_KEY))

    def memory_bytes(self, sample: int = 200) -> float:
        """What the cache holds in Redis: its index plus its entries (MEMORY USAGE of a sample)."""
        entries = self._redis.zrange(CACHE_INDEX_KEY, 0, sample - 1)
        per_entry = sum(int(self._redis.memory_usage(key, samples=0) or 0) for key in entries) / max(len(entries), 1)
        return self.size() * per_entry + int(self._redis.memory_usage(CACHE_INDEX_KEY, samples=0) or 0)

    def clear(self) -> int:
        """Drop every entry (e.g. after re-exporting a model version in place)."""
        keys = [key for key in self._redis.zrange(CACHE_INDEX_KEY, 0, -1)]
        with self._redis.pipeline() as pipe:
            for start in range(0, len(keys), 1000):
                pipe.delete(*keys[start : start + 1000])
            pipe.delete(CACHE_INDEX_KEY)
            pipe.execute()
        return len(keys)
