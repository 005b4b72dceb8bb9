"""ResultCache: image outcomes by content, so that a byte-identical copy is classified once.

The key is the sha256 of the image's bytes with everything else that shapes the answer:
the model's name and version (a version pins its export: target, precision and
preprocessing), the worker's decode mode (fast decoding changes ~3 % of answers), top-k
and whether a map was asked for; and whose it is: answers are kept per owner unless the
operator shares them (``PODIUM_RESULT_CACHE_SCOPE=shared``, which lets one tenant learn
whether another classified the same bytes). Only outcomes of a pinned model version are
cached: "the newest version" changes meaning.

Redis runs with noeviction, so the cache bounds itself, and it is laid out to cost little
(~60 bytes an answer, where a key per answer with an index cost ~700): answers live as
fields of small hashes (Redis keeps those as compact listpacks), a 14-byte digest of the
key each, the answer packed in ~40 bytes (labels as numbers of a shared label table,
probabilities as the 7-decimal integers they are rounded to). Hashes belong to a
generation: once the current one holds half of ``max_entries``, a new one starts and the
one before the previous is dropped whole, so at most ``max_entries`` are kept and the
newest half always. A generation's hashes expire ``ttl_s`` after they were made.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import redis

from podium.core.jobs import ActivationMap, ImageOutcome, Prediction
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import KEY_PREFIX

CACHE_PREFIX = f"{KEY_PREFIX}:cache"
GENERATION_KEY = f"{CACHE_PREFIX}:generation"
# Label numbers, shared by every model (a label is a string; its number never changes).
LABEL_IDS_KEY = f"{KEY_PREFIX}:labels:ids"
LABEL_NAMES_KEY = f"{KEY_PREFIX}:labels:names"
# The scope of answers every owner shares (owners are digests: no clash with this name).
SHARED_SCOPE = "shared"
ANONYMOUS_SCOPE = "anonymous"  # the owner of jobs submitted without API keys
# A hash stays a listpack up to 128 fields (Redis's default): buckets are sized to ~48.
_FIELDS_PER_BUCKET = 48
_PREDICTION = struct.Struct("<HHI")  # label number, class index, probability x 1e7
_PROBABILITY_SCALE = 10_000_000  # ImageOutcome.encode keeps 7 decimals: exact as integers

# The scripts name the cache's keys themselves (a generation's buckets are not known ahead).
_GENERATION = f"""
local function generation() return tonumber(redis.call('GET', '{GENERATION_KEY}') or '0') end
local function bucket(gen, name) return ARGV[1] .. ':' .. gen .. ':' .. name end
"""

# ARGV: prefix, then (bucket, field) pairs. Each answer from the current generation, else
# the previous one; false where there is none.
_GET = (
    _GENERATION
    + """
local gen = generation()
local found = {}
for i = 2, #ARGV, 2 do
  local value = redis.call('HGET', bucket(gen, ARGV[i]), ARGV[i + 1])
  if not value and gen > 0 then value = redis.call('HGET', bucket(gen - 1, ARGV[i]), ARGV[i + 1]) end
  found[#found + 1] = value
end
return found
"""
)

# ARGV: prefix, ttl_s, half (answers per generation), buckets (count), then (bucket, field,
# value) triples. Keeps each answer in the current generation; a full generation starts
# the next and drops the one before the previous.
_PUT = (
    _GENERATION
    + """
local gen = generation()
local count_key = bucket(gen, 'count')
for i = 5, #ARGV, 3 do
  local name = bucket(gen, ARGV[i])
  if redis.call('HSETNX', name, ARGV[i + 1], ARGV[i + 2]) == 1 then
    if redis.call('HLEN', name) == 1 then redis.call('EXPIRE', name, ARGV[2]) end
    if redis.call('INCR', count_key) == 1 then redis.call('EXPIRE', count_key, ARGV[2]) end
  end
end
if tonumber(redis.call('GET', count_key) or '0') >= tonumber(ARGV[3]) then
  redis.call('SET', '"""
    + GENERATION_KEY
    + """', gen + 1)
  if gen > 0 then
    local old = {bucket(gen - 1, 'count')}
    for b = 0, tonumber(ARGV[4]) - 1 do old[#old + 1] = bucket(gen - 1, string.format('%x', b)) end
    local unpack = unpack or table.unpack
    for first = 1, #old, 1000 do redis.call('UNLINK', unpack(old, first, math.min(first + 999, #old))) end
  end
end
return 1
"""
)

# ARGV: label. Its number, allocated on first sight.
_LABEL_ID = f"""
local id = redis.call('HGET', '{LABEL_IDS_KEY}', ARGV[1])
if id then return tonumber(id) end
id = redis.call('HLEN', '{LABEL_IDS_KEY}')
redis.call('HSET', '{LABEL_IDS_KEY}', ARGV[1], id)
redis.call('HSET', '{LABEL_NAMES_KEY}', id, ARGV[1])
return id
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
        self._half = max(1, math.ceil(max_entries / 2))
        self._bits = min(16, max(4, math.ceil(math.log2(max(1, self._half / _FIELDS_PER_BUCKET)))))
        self._get = client.register_script(_GET)
        self._put = client.register_script(_PUT)
        self._label_id = client.register_script(_LABEL_ID)
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def _place(self, key: str) -> tuple[str, bytes]:
        """(bucket, field) of a key: 128 bits of its digest, the first ``_bits`` naming the bucket."""
        digest = hashlib.sha256(key.encode()).digest()[:16]
        return format(int.from_bytes(digest[:2], "big") >> (16 - self._bits), "x"), digest[2:]

    def get(self, key: str) -> ImageOutcome | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, ImageOutcome]:
        """The cached answers among ``keys``, in one round trip."""
        if not keys:
            return {}
        args: list[object] = [CACHE_PREFIX]
        for key in keys:
            args += self._place(key)
        found = self._get(args=args)
        return {key: self._unpacked(raw) for key, raw in zip(keys, found, strict=True) if raw}

    def put(self, key: str, outcome: ImageOutcome) -> None:
        """Keep an answer (only a successful one: errors may be passing)."""
        self.put_many([(key, outcome)])

    def put_many(self, answers: list[tuple[str, ImageOutcome]]) -> None:
        """``put`` of each, in one round trip."""
        args: list[object] = [CACHE_PREFIX, self._ttl_s, self._half, 1 << self._bits]
        for key, outcome in answers:
            if outcome.ok:
                args += [*self._place(key), self._packed(outcome)]
        if len(args) > 4:
            self._put(args=args)

    def size(self) -> int:
        """Answers kept (the current generation's and the previous one's)."""
        gen = int(self._redis.get(GENERATION_KEY) or 0)
        counts = self._redis.mget([f"{CACHE_PREFIX}:{g}:count" for g in (gen, gen - 1) if g >= 0])
        return sum(int(count or 0) for count in counts)

    def memory_bytes(self) -> float:
        """What the cache holds in Redis (MEMORY USAGE of each of its keys)."""
        keys = self._redis.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000)
        return float(sum(int(self._redis.memory_usage(key, samples=0) or 0) for key in keys))

    def clear(self) -> int:
        """Drop every answer (e.g. after re-exporting a model version in place); how many."""
        kept = self.size()
        keys = list(self._redis.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000))
        for first in range(0, len(keys), 1000):
            self._redis.unlink(*keys[first : first + 1000])
        return kept

    # --- packing -------------------------------------------------------------------

    def _packed(self, outcome: ImageOutcome) -> bytes:
        parts = [bytes([len(outcome.predictions)])]
        for p in outcome.predictions:
            parts.append(
                _PREDICTION.pack(self._label(p.label), p.index, round(round(p.probability, 7) * _PROBABILITY_SCALE))
            )
        if outcome.cam is not None:
            rows, cols = outcome.cam.grid
            parts.append(struct.pack("<HBB", outcome.cam.class_index, rows, cols) + outcome.cam.levels)
        return b"".join(parts)

    def _unpacked(self, raw: bytes) -> ImageOutcome:
        count, offset = raw[0], 1
        predictions = []
        for _ in range(count):
            label, index, scaled = _PREDICTION.unpack_from(raw, offset)
            predictions.append(Prediction(self._name(label), index, scaled / _PROBABILITY_SCALE))
            offset += _PREDICTION.size
        cam = None
        if offset < len(raw):
            class_index, rows, cols = struct.unpack_from("<HBB", raw, offset)
            cam = ActivationMap(class_index, (rows, cols), raw[offset + 4 : offset + 4 + rows * cols])
        return ImageOutcome(predictions=tuple(predictions), cam=cam)

    def _label(self, label: str) -> int:
        if label not in self._ids:
            self._ids[label] = int(self._label_id(args=[label]))
            self._names[self._ids[label]] = label
        return self._ids[label]

    def _name(self, number: int) -> str:
        if number not in self._names:
            table = self._redis.hgetall(LABEL_NAMES_KEY)
            self._names.update({int(k): v.decode() for k, v in table.items()})
        return self._names[number]
