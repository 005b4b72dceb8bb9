"""Logins: a signed, HttpOnly, SameSite=Strict cookie names a session held here.

The API key stays on the server: the cookie carries only a random session id (signed, so
that a forged one is refused without a lookup), the page never holds the key, and the
CSRF token of a session is an HMAC of its id, checked on every POST.

A visitor who has not logged in holds nothing here: the signed cookie alone is the session
(its id and CSRF token follow from it), so any number of cookieless requests cost no memory
and cannot push a logged-in session out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from itsdangerous import BadSignature, TimestampSigner

COOKIE_NAME = "podium_session"
# Logins held at once; the oldest go first (making one takes a valid API key).
MAX_SESSIONS = 10_000
# The first letter of a session id: a login (held here) or an anonymous visitor (not held).
_LOGIN, _ANONYMOUS = "u", "a"


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
        """A fresh session and the cookie value that names it; only a login is held here."""
        session_id = (_LOGIN if api_key else _ANONYMOUS) + secrets.token_urlsafe(24)
        if api_key:
            with self._lock:
                self._forget_expired()
                self._keys[session_id] = (api_key, time.monotonic() + self._ttl_s)
                while len(self._keys) > MAX_SESSIONS:
                    del self._keys[next(iter(self._keys))]
        return Session(session_id, api_key, self.csrf_token(session_id)), self._signer.sign(session_id).decode()

    def get(self, cookie: str | None) -> Session | None:
        """The session a cookie names (anonymous unless it is a login held here), or None for
        none, a forged one or an expired one."""
        if not cookie:
            return None
        try:
            session_id = self._signer.unsign(cookie, max_age=self._ttl_s).decode()
        except BadSignature:
            return None
        with self._lock:
            held = self._keys.get(session_id)
            if held is not None and held[1] < time.monotonic():
                del self._keys[session_id]
                held = None
        if held is None and session_id.startswith(_LOGIN):
            return None  # a login that ended (logout, expiry, eviction, restart)
        return Session(session_id, held[0] if held else "", self.csrf_token(session_id))

    def __len__(self) -> int:
        """Logins held."""
        with self._lock:
            return len(self._keys)

    def end(self, session: Session) -> None:
        with self._lock:
            self._keys.pop(session.id, None)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf_token, token)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for session_id in [sid for sid, (_, expiry) in self._keys.items() if expiry < now]:
            del self._keys[session_id]


# Failed logins one address may make per window before it waits (a key is 32+ random
# characters: this slows guessing, and keeps one address from churning the gateway).
MAX_FAILED_LOGINS = 10
FAILED_LOGIN_WINDOW_S = 60.0
_TRACKED_ADDRESSES = 10_000


class LoginThrottle:
    """Failed logins per client address in a sliding window; past the limit, wait."""

    def __init__(self, limit: int = MAX_FAILED_LOGINS, window_s: float = FAILED_LOGIN_WINDOW_S) -> None:
        self._limit = limit
        self._window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(address)
            while failures and failures[0] <= now - self._window_s:
                failures.popleft()
            if not failures or len(failures) < self._limit:
                return 0.0
            return failures[0] + self._window_s - now

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, deque()).append(time.monotonic())
            self._failures.move_to_end(address)
            while len(self._failures) > _TRACKED_ADDRESSES:
                self._failures.popitem(last=False)
