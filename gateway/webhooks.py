"""Webhooks: a POST to the job's URL when it ends, retried with backoff, never in its way.

The Lua script that ends a job queues its id (``jobstore``); ``gateway.webhook_sender``
takes each id (onto a sending list, leased while a gateway holds it) and delivers it.
After ``webhook_retry_s`` of failures the delivery is given up, logged. This module holds
what a delivery is: the URL's checks at submit, the body, the signature.

With ``PODIUM_WEBHOOK_SECRET`` set, each POST carries ``X-Podium-Timestamp: UNIX_SECONDS``
and ``X-Podium-Signature: sha256=HEX``, the HMAC-SHA256 of ``TIMESTAMP.`` + the raw body
with the job owner's signing key (derived from the secret, ``owner_signing_key``); a
receiver recomputes it, compares in constant time and refuses an old timestamp.

Receivers inside (loopback, private networks, cloud metadata) are refused unless the
operator opens them (``gateway.egress``); each POST goes to the checked address, follows
no redirect and ends by its deadline (``gateway.webhook_http``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

from gateway.egress import EgressPolicy
from podium.core.errors import InvalidArgument
from podium.core.jobs import Job

SIGNATURE_HEADER = "X-Podium-Signature"
TIMESTAMP_HEADER = "X-Podium-Timestamp"
MAX_URL_CHARS = 2000


def checked_webhook(url: str, policy: EgressPolicy) -> str:
    """An http(s) URL with a host that is no internal address, or InvalidArgument (at submit,
    before anything is stored; names are resolved and checked again at each delivery)."""
    if not url:
        return ""
    if len(url) > MAX_URL_CHARS:
        raise InvalidArgument(f"webhook URL must be at most {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"webhook must be an http:// or https:// URL with a host, not {receiver_name(url)!r}")
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


def owner_signing_key(secret: str, owner: str) -> str:
    """The key one owner's receivers check signatures with: derived from the gateway's
    secret and the owner (the digest of its API key), so that a tenant cannot replay its
    own signed payloads to another tenant's receiver. ``podium webhook-key`` prints it."""
    return hmac.new(secret.encode(), b"podium-webhook-key:" + owner.encode(), hashlib.sha256).hexdigest()


def signature(key: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of ``TIMESTAMP.BODY``: the time is signed with the payload."""
    return "sha256=" + hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(key: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The POST's headers; with an owner's signing key, the timestamp and the signature."""
    headers = {"Content-Type": "application/json"}
    if key:
        timestamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = signature(key, timestamp, body)
    return headers


def shown_webhook(url: str) -> str:
    """A job's webhook as the API shows it: user info, query and fragment (where tokens
    live) replaced by "…", so a token never comes back from GetJob or ListJobs."""
    if not url:
        return ""
    parts = urlsplit(url)
    hidden = "…" if parts.query or parts.fragment or "@" in parts.netloc else ""
    return f"{parts.scheme}://{receiver_name(url)}{parts.path}{'?' + hidden if hidden else ''}"


def receiver_name(url: str) -> str:
    """Where a webhook went, for logs: host and port only (user info, path and query may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.hostname or '?'}{port}"
