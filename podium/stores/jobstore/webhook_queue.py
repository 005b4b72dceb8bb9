"""The webhook queue in Redis: ended jobs waiting, and deliveries a gateway holds under a lease.

Ending a job pushes its id onto the queue (in the same Lua step, ``podium.stores.jobstore.scripts``). A
gateway moves an id onto the sending list and leases it; the lease is renewed while the
gateway works on it and deleted with the id when it is done. Only ids on the sending list
whose lease ran out (their gateway died) go back to the queue, so a second replica never
takes over a delivery that is still in hand.
"""

from __future__ import annotations

import time

import redis

from podium.stores.jobstore.schema import KEY_PREFIX, WEBHOOK_QUEUE_KEY, WEBHOOK_SENDING_KEY

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


# KEYS: the queue, the sending list. ARGV: the lease keys' prefix, lease_s. Moves the next
# id to the sending list and leases it, atomically; returns it, or nil.
_TAKE = """
local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
if id then redis.call('SET', ARGV[1] .. id, '1', 'EX', ARGV[2]) end
return id
"""
# An empty take waits 0.1 s, then twice as long each time up to a second: a gateway with
# nothing to send asks Redis once a second (ten times a second cost it 5 CPU-ms a second),
# and a webhook after a quiet spell leaves within a second.
_POLL_S = 0.1
_IDLE_POLL_S = 1.0


class WebhookQueue:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._requeue = client.register_script(_REQUEUE_ORPHANS)
        self._take = client.register_script(_TAKE)
        self._poll_s = _POLL_S

    def take(self, timeout_s: float, lease_s: float) -> str | None:
        """The next ended job whose webhook is due, moved to the sending list and leased in
        one step (a sweep between a move and its lease would hand the id to a second
        gateway); polled, since a script cannot block, less often while nothing comes."""
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self._take(keys=[WEBHOOK_QUEUE_KEY, WEBHOOK_SENDING_KEY], args=[LEASE_PREFIX, max(1, int(lease_s))])
            if raw:
                self._poll_s = _POLL_S
                return raw.decode()
            if time.monotonic() + self._poll_s > deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                return None  # the caller's next take asks first
            time.sleep(self._poll_s)
            self._poll_s = min(2 * self._poll_s, _IDLE_POLL_S)

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
