"""The webhook queue in Redis: ended jobs waiting, and deliveries a gateway holds under a lease.

Ending a job pushes its id onto the queue (in the same Lua step, ``jobstore.scripts``). A
gateway moves an id onto the sending list and leases it; the lease is renewed while the
gateway works on it and deleted with the id when it is done. Only ids on the sending list
whose lease ran out (their gateway died) go back to the queue, so a second replica never
takes over a delivery that is still in hand.
"""

from __future__ import annotations

import redis

from jobstore.schema import KEY_PREFIX, WEBHOOK_QUEUE_KEY, WEBHOOK_SENDING_KEY

LEASE_PREFIX = f"{KEY_PREFIX}:webhooks:lease:"
DEFAULT_WEBHOOK_LEASE_S = 300.0

# KEYS: the sending list, the queue. ARGV: the lease keys' prefix. Moves every id whose
# lease is gone back to the queue; returns how many.
_REQUEUE_ORPHANS = """
local moved = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then
    redis.call('LREM', KEYS[1], 0, id)
    redis.call('LPUSH', KEYS[2], id)
    moved = moved + 1
  end
end
return moved
"""


class WebhookQueue:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._requeue = client.register_script(_REQUEUE_ORPHANS)

    def take(self, timeout_s: float, lease_s: float) -> str | None:
        """The next ended job whose webhook is due, moved to the sending list and leased."""
        raw = self._redis.blmove(WEBHOOK_QUEUE_KEY, WEBHOOK_SENDING_KEY, timeout_s, "RIGHT", "LEFT")
        if not raw:
            return None
        job_id = raw.decode()
        # Between the move and the lease a dying gateway leaves an unleased id: requeued, at least once.
        self._redis.set(LEASE_PREFIX + job_id, "1", ex=max(1, int(lease_s)))
        return job_id

    def renew(self, job_id: str, lease_s: float) -> bool:
        return bool(self._redis.set(LEASE_PREFIX + job_id, "1", xx=True, ex=max(1, int(lease_s))))

    def done(self, job_id: str) -> None:
        """Delivered, or given up: off the sending list, lease gone."""
        with self._redis.pipeline() as pipe:
            pipe.lrem(WEBHOOK_SENDING_KEY, 0, job_id)
            pipe.delete(LEASE_PREFIX + job_id)
            pipe.execute()

    def requeue_orphans(self) -> int:
        """Deliveries whose gateway died (lease gone) back to the queue."""
        return int(self._requeue(keys=[WEBHOOK_SENDING_KEY, WEBHOOK_QUEUE_KEY], args=[LEASE_PREFIX]))
