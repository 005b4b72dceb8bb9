"""Webhooks: a POST to the job's URL when it ends, retried with backoff, never in its way.

The Lua script that ends a job queues its id (``jobstore``); a gateway thread takes each
id (moving it to a sending list, so a gateway that dies mid-delivery leaves it for the
next start) and a small pool delivers. A receiver that is down or slow delays only its
own deliveries; after ``webhook_retry_s`` of failures the delivery is given up, logged.

With ``PODIUM_WEBHOOK_SECRET`` set, each POST carries ``X-Podium-Signature: sha256=HEX``,
the HMAC-SHA256 of the raw body with that secret; a receiver recomputes it and compares
in constant time (the body's ``job_id`` and ``finished_at`` make a replay recognisable).

Receivers inside (loopback, private networks, cloud metadata) are refused unless the
operator opens them (``gateway.egress``); each POST goes to the checked address, follows
no redirect and ends by its deadline (``gateway.webhook_http``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from errors import InvalidArgument
from gateway.egress import EgressPolicy, EgressRefused
from gateway.webhook_http import post
from jobs import Job
from jobstore import JobStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Podium-Signature"
MAX_URL_CHARS = 2000
_TAKE_TIMEOUT_S = 1.0
_FIRST_DELAY_S = 1.0
_MAX_DELAY_S = 60.0


def checked_webhook(url: str, policy: EgressPolicy) -> str:
    """An http(s) URL with a host that is no internal address, or InvalidArgument (at submit,
    before anything is stored; names are resolved and checked again at each delivery)."""
    if not url:
        return ""
    if len(url) > MAX_URL_CHARS:
        raise InvalidArgument(f"webhook URL must be at most {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"webhook must be an http:// or https:// URL with a host, not {_host(url)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        raise InvalidArgument(f"webhook URL has an invalid port: {exc}") from None
    policy.check_host(parts.hostname)
    return url


def payload(job: Job) -> bytes:
    """The POST's body: the job's end, in the documented keys."""
    body = {
        "job_id": job.id,
        "name": job.name,
        "state": job.state.value,
        "total": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "cached": job.cached,
        "finished_at": job.finished_at,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return headers


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
    ) -> None:
        self._store = store
        self._secret = secret
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="podium-webhook")
        self._on_delivery = on_delivery
        self._policy = policy or EgressPolicy()
        self._send = send or self._post

    def _post(self, url: str, body: bytes, secret: str, timeout_s: float) -> None:
        post(url, body, signed_headers(secret, body), timeout_s, self._policy)

    def run(self, stop: threading.Event) -> None:
        """Deliver queued webhooks until ``stop`` is set (a gateway thread)."""
        try:
            moved = self._store.requeue_webhooks()
            if moved:
                log.info("%d webhook deliveries left unfinished by a gateway are queued again", moved)
        except Exception:
            log.warning("could not requeue unfinished webhooks", exc_info=True)
        while not stop.is_set():
            try:
                job_id = self._store.take_webhook(_TAKE_TIMEOUT_S)
            except Exception:
                log.warning("webhook queue unavailable", exc_info=True)
                stop.wait(_FIRST_DELAY_S)
                continue
            if job_id is not None:
                self._pool.submit(self.deliver, job_id, stop)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, job_id: str, stop: threading.Event) -> bool:
        """POST until a 2xx answer or until retry_s has passed; true if delivered."""
        try:
            job = self._store.get(job_id)
            if job is None or not job.webhook:
                return False  # deleted (or expired) before its webhook went out
            body = payload(job)
            deadline = time.monotonic() + self._retry_s
            delay = _FIRST_DELAY_S
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._send(job.webhook, body, self._secret, self._timeout_s)
                    log.info("job %s: webhook delivered (attempt %d)", job_id, attempt)
                    self._on_delivery(True)
                    return True
                except EgressRefused as exc:  # no retry: the receiver is where webhooks never go
                    log.warning("job %s: webhook not sent: %s", job_id, exc)
                    self._on_delivery(False)
                    return False
                except (OSError, ValueError) as exc:
                    if time.monotonic() + delay > deadline or stop.is_set():
                        log.warning(
                            "job %s: webhook to %s given up after %d attempts: %s",
                            job_id,
                            _host(job.webhook),
                            attempt,
                            exc,
                        )
                        self._on_delivery(False)
                        return False
                    log.info("job %s: webhook attempt %d failed (%s); again in %.0f s", job_id, attempt, exc, delay)
                    stop.wait(delay)
                    delay = min(delay * 2, _MAX_DELAY_S)
        finally:
            self._store.webhook_sent(job_id)


def _host(url: str) -> str:
    """Where a webhook went, for logs: host and port only (user info, path and query may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.hostname or '?'}{port}"
