"""Named claims: short leases (SET NX EX) that one gateway holds at a time — a reconcile,
a compaction, the results sweep, an upload in hand — and the job keys of resumable submits."""

from __future__ import annotations

import functools

import redis

from podium.stores.jobstore import scripts
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.schema import KEY_PREFIX, JobKeys, job_key_name


@convert_redis_errors
class NamedClaims:
    """A role of ``JobStore``: leases by name, for work only one gateway may do at a time."""

    _redis: redis.Redis

    def claim(self, name: str, ttl_s: float) -> bool:
        """A short lease (SET NX EX): true for the one caller that gets it."""
        return bool(self._redis.set(_lease(name), "1", nx=True, ex=max(1, int(ttl_s))))

    def renew_claim(self, name: str, ttl_s: float) -> bool:
        return bool(self._redis.set(_lease(name), "1", xx=True, ex=max(1, int(ttl_s))))

    def claim_held(self, name: str) -> bool:
        return bool(self._redis.exists(_lease(name)))

    def release_claim(self, name: str) -> None:
        self._redis.delete(_lease(name))


@convert_redis_errors
class JobKeyBindings:
    """A role of ``JobStore``: a client's job key (per API key) bound to the job it started."""

    _redis: redis.Redis

    @functools.cached_property
    def _bind(self):
        return self._redis.register_script(scripts.BIND_JOB_KEY)

    @functools.cached_property
    def _unbind(self):
        return self._redis.register_script(scripts.UNBIND_JOB_KEY)

    def bind_job_key(self, owner: str, job_key: str, job_id: str, ttl_s: int) -> str:
        """Bind the key to job_id unless it is bound already; returns the job it is bound to."""
        name = job_key_name(owner, job_key)
        bound = self._bind(keys=[name], args=[job_id, max(1, int(ttl_s))])
        bound = bound.decode() if isinstance(bound, bytes) else str(bound)
        if bound == job_id:
            self._redis.hset(JobKeys(job_id).job, "job_key_binding", name)
        return bound

    def job_for_key(self, owner: str, job_key: str) -> str | None:
        found = self._redis.get(job_key_name(owner, job_key))
        return found.decode() if found else None

    def unbind_job_key(self, owner: str, job_key: str, job_id: str) -> None:
        """Forget the binding if it still names job_id (its job expired or was deleted)."""
        self._unbind(keys=[job_key_name(owner, job_key)], args=[job_id])


def _lease(name: str) -> str:
    return f"{KEY_PREFIX}:lease:{name}"
