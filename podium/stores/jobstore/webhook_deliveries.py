"""Ended jobs' webhooks, queued and leased to the gateway that delivers them.

A role of ``JobStore`` (``store``), over the one Redis layout of ``schema``."""

from __future__ import annotations

import functools

import redis

from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.webhook_queue import DEFAULT_WEBHOOK_LEASE_S, WebhookQueue


@convert_redis_errors
class WebhookDeliveries:
    """Ended jobs' webhooks, queued and leased to the gateway that delivers them."""

    _redis: redis.Redis
    _ttl_s: int

    @functools.cached_property
    def _webhooks(self) -> WebhookQueue:
        return WebhookQueue(self._redis)

    def take_webhook(self, timeout_s: float, lease_s: float = DEFAULT_WEBHOOK_LEASE_S) -> str | None:
        """The next ended job whose webhook is due (leased to this caller until ``webhook_sent``,
        while renewed), or None after ``timeout_s``."""
        return self._webhooks.take(timeout_s, lease_s)

    def renew_webhook_lease(self, job_id: str, lease_s: float) -> bool:
        return self._webhooks.renew(job_id, lease_s)

    def webhook_sent(self, job_id: str) -> None:
        """Delivered, or given up: off the sending list."""
        self._webhooks.done(job_id)

    def requeue_webhooks(self) -> int:
        """Deliveries a gateway left half done (it died: its lease ran out) go back to the queue."""
        return self._webhooks.requeue_orphans()
