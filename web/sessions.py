"""Logins: a signed, HttpOnly, SameSite=Strict cookie names a session held here.

The API key stays on the server: the cookie carries only a random session id (signed, so
that a forged one is refused without a lookup), the page never holds the key, and the
CSRF token of a session is an HMAC of its id, checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, TimestampSigner

COOKIE_NAME = "podium_session"
# Sessions held at once (a visitor without a cookie gets one, for its CSRF token); the oldest go first.
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    id: str
    api_key: str
    csrf_token: str


class Sessions:
    def __init__(self, ttl_s: int) -> None:
        # Sessions live in this process, so a key of its own: logins end when it restarts.
        self._secret = secrets.token_bytes(32)
        self._signer = TimestampSigner(self._secret, salt="podium-session")
        self._ttl_s = ttl_s
        self._keys: dict[str, tuple[str, float]] = {}  # session id -> (API key, expiry)
        self._lock = threading.Lock()

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._secret, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()

    def new(self, api_key: str = "") -> tuple[Session, str]:
        """A fresh session and the cookie value that names it."""
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_expired()
            self._keys[session_id] = (api_key, time.monotonic() + self._ttl_s)
            while len(self._keys) > MAX_SESSIONS:
                del self._keys[next(iter(self._keys))]
        return Session(session_id, api_key, self.csrf_token(session_id)), self._signer.sign(session_id).decode()

    def get(self, cookie: str | None) -> Session | None:
        """The session a cookie names, or None for none, a forged one or an expired one."""
        if not cookie:
            return None
        try:
            session_id = self._signer.unsign(cookie, max_age=self._ttl_s).decode()
        except BadSignature:
            return None
        with self._lock:
            held = self._keys.get(session_id)
            if held is None or held[1] < time.monotonic():
                self._keys.pop(session_id, None)
                return None
        return Session(session_id, held[0], self.csrf_token(session_id))

    def end(self, session: Session) -> None:
        with self._lock:
            self._keys.pop(session.id, None)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf_token, token)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for session_id in [sid for sid, (_, expiry) in self._keys.items() if expiry < now]:
            del self._keys[session_id]
