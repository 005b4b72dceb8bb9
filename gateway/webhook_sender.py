"""WebhookSender: delivers ended jobs' webhooks, fairly, once, and never in the gateway's way.

- A retry waits in a schedule, not in a thread: a worker makes one attempt (bounded by
  its deadline) and is free again, so receivers that are down hold no thread.
- At most ``per_owner`` attempts of one owner run at once; the rest wait their turn, so
  one tenant's slow receivers cannot delay another tenant's deliveries.
- Each delivery is leased in Redis while a gateway holds it, and renewed; only deliveries
  whose lease ran out (their gateway died) are queued again, by any gateway, so two
  replicas never post the same job twice.
- Workers are daemon threads: a gateway that stops waits on no receiver.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.egress import EgressPolicy, EgressRefused
from gateway.webhook_http import post
from gateway.webhooks import owner_signing_key, payload, receiver_name, signed_headers
from podium.core.jobs import Job
from podium.stores.jobstore import JobStore

log = logging.getLogger(__name__)

_TAKE_TIMEOUT_S = 1.0
_FIRST_DELAY_S = 1.0
_MAX_DELAY_S = 60.0
_BUSY_OWNER_WAIT_S = 0.25
_SWEEP_S = 30.0  # how often leases are renewed and orphaned deliveries queued again
DEFAULT_PER_OWNER = 2


@dataclass(order=True)
class _Due:
    at: float
    job_id: str = field(compare=False)
    give_up_at: float = field(compare=False)
    attempt: int = field(compare=False, default=0)
    delay: float = field(compare=False, default=_FIRST_DELAY_S)


class WebhookSender:
    def __init__(
        self,
        store: JobStore,
        secret: str,
        timeout_s: float,
        retry_s: float,
        workers: int = 8,
        on_delivery: Callable[[bool], None] = lambda delivered: None,
        send: Callable[[str, bytes, str, float], None] | None = None,
        policy: EgressPolicy | None = None,
        per_owner: int = DEFAULT_PER_OWNER,
    ) -> None:
        self._store = store
        self._secret = secret
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._workers = workers
        self._on_delivery = on_delivery
        self._policy = policy or EgressPolicy()
        self._send = send or self._post
        self._per_owner = per_owner
        # A lease outlives the longest wait between two renewals: a sweep, plus one attempt.
        self.lease_s = 2 * (_SWEEP_S + timeout_s) + _MAX_DELAY_S
        self._lock = threading.Lock()
        self._due: list[_Due] = []  # a heap, by time
        self._busy: Counter[str] = Counter()  # attempts in flight, by owner
        self._held: set[str] = set()  # this gateway's deliveries (leased)
        self._work: queue.Queue[tuple[_Due, Job]] = queue.Queue()

    def _post(self, url: str, body: bytes, key: str, timeout_s: float) -> None:
        post(url, body, signed_headers(key, body), timeout_s, self._policy)

    # --- the gateway's thread -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Deliver queued webhooks until ``stop`` is set (a gateway thread)."""
        for number in range(self._workers):
            threading.Thread(target=self._work_loop, name=f"podium-webhook-{number}", daemon=True).start()
        next_sweep = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep()
                next_sweep = now + _SWEEP_S
            try:
                job_id = self._store.take_webhook(self._take_timeout(), self.lease_s)
            except Exception:
                log.warning("webhook queue unavailable", exc_info=True)
                stop.wait(_FIRST_DELAY_S)
                continue
            if job_id is not None:
                self._schedule(_Due(time.monotonic(), job_id, time.monotonic() + self._retry_s))
            self._dispatch_due()

    def _take_timeout(self) -> float:
        with self._lock:
            until_due = self._due[0].at - time.monotonic() if self._due else _TAKE_TIMEOUT_S
        return min(_TAKE_TIMEOUT_S, max(0.01, until_due))

    def _sweep(self) -> None:
        """Renew this gateway's leases; queue again what a dead gateway left."""
        try:
            with self._lock:
                held = list(self._held)
            for job_id in held:
                self._store.renew_webhook_lease(job_id, self.lease_s)
            moved = self._store.requeue_webhooks()
            if moved:
                log.info("%d webhook deliveries left unfinished by a gateway are queued again", moved)
        except Exception:
            log.warning("could not renew or requeue webhook deliveries", exc_info=True)

    def _schedule(self, due: _Due) -> None:
        with self._lock:
            self._held.add(due.job_id)
            heapq.heappush(self._due, due)

    def _dispatch_due(self) -> None:
        """Hand every due delivery to a worker, unless its owner has its share running."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._due or self._due[0].at > now:
                    return
                due = heapq.heappop(self._due)
            job = self._store.get(due.job_id)
            if job is None or not job.webhook:
                self._finish(due.job_id, None)  # deleted (or expired) before its webhook went out
                continue
            with self._lock:
                if self._busy[job.owner] >= self._per_owner:
                    due.at = now + _BUSY_OWNER_WAIT_S
                    heapq.heappush(self._due, due)
                    continue
                self._busy[job.owner] += 1
            self._work.put((due, job))

    # --- the workers ------------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            due, job = self._work.get()
            try:
                outcome = self._attempt(due, job)
                if isinstance(outcome, _Due):
                    self._schedule(outcome)
            except Exception:  # a bug must not end the worker
                log.exception("webhook delivery of job %s failed", job.id)
                self._finish(job.id, False)
            finally:
                with self._lock:
                    self._busy[job.owner] -= 1
                    if not self._busy[job.owner]:
                        del self._busy[job.owner]

    def _attempt(self, due: _Due, job: Job) -> _Due | bool:
        """One POST: the next try when it failed and time is left; else finished, and whether delivered."""
        attempt = due.attempt + 1
        try:
            key = owner_signing_key(self._secret, job.owner) if self._secret else ""
            self._send(job.webhook, payload(job), key, self._timeout_s)
        except EgressRefused as exc:  # no retry: the receiver is where webhooks never go
            log.warning("job %s: webhook not sent: %s", job.id, exc)
            self._finish(job.id, False)
            return False
        except (OSError, ValueError) as exc:
            now = time.monotonic()
            if now + due.delay > due.give_up_at:
                where = receiver_name(job.webhook)
                log.warning("job %s: webhook to %s given up after %d attempts: %s", job.id, where, attempt, exc)
                self._finish(job.id, False)
                return False
            log.info("job %s: webhook attempt %d failed (%s); again in %.0f s", job.id, attempt, exc, due.delay)
            return _Due(now + due.delay, job.id, due.give_up_at, attempt, min(due.delay * 2, _MAX_DELAY_S))
        log.info("job %s: webhook delivered (attempt %d)", job.id, attempt)
        self._finish(job.id, True)
        return True

    def _finish(self, job_id: str, delivered: bool | None) -> None:
        if delivered is not None:
            self._on_delivery(delivered)
        with self._lock:
            self._held.discard(job_id)
        self._store.webhook_sent(job_id)

    # --- one delivery in the caller's thread (tools, tests) -----------------------------

    def deliver(self, job_id: str, stop: threading.Event) -> bool:
        """POST until a 2xx answer or until retry_s has passed, waiting here; true if delivered."""
        job = self._store.get(job_id)
        if job is None or not job.webhook:
            self._finish(job_id, None)
            return False
        outcome: _Due | bool = _Due(time.monotonic(), job_id, time.monotonic() + self._retry_s)
        while isinstance(outcome, _Due):
            if stop.wait(max(0.0, outcome.at - time.monotonic())):
                self._finish(job_id, False)
                return False
            outcome = self._attempt(outcome, job)
        return outcome
