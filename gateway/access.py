"""Who is calling, and which jobs they may see.

A job belongs to the API key that created it: its record keeps a digest of the key (never
the key). Admin keys (``PODIUM_ADMIN_API_KEYS``) see every job. Without API keys (a
loopback gateway, or PODIUM_ALLOW_UNAUTHENTICATED) every caller is the same anonymous
caller and sees every job. A job another key owns is answered as not found, so that
job ids cannot be probed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from podium.core.errors import InvalidArgument

API_KEY_HEADER = "x-api-key"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_OWNER_DIGEST_CHARS = 24


@dataclass(frozen=True)
class Caller:
    owner: str = ""  # digest of the caller's key; "" without keys
    admin: bool = False

    def may_see(self, job_owner: str) -> bool:
        return self.admin or job_owner == self.owner


ANONYMOUS = Caller(admin=True)


def owner_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:_OWNER_DIGEST_CHARS]


def caller_of(metadata: tuple | None, admin_keys: list[str], keys_required: bool) -> Caller:
    """The caller of an RPC, from its metadata (the key was already checked by the interceptor)."""
    if not keys_required:
        return ANONYMOUS
    given = next((value for key, value in metadata or () if key == API_KEY_HEADER), "")
    given = given.decode() if isinstance(given, bytes) else given
    return Caller(owner=owner_digest(given), admin=given in admin_keys)


def checked_job_id(job_id: str) -> str:
    """A job id as the gateway issues them (32 lower-case hex digits), or InvalidArgument."""
    if not _JOB_ID.fullmatch(job_id or ""):
        shown = job_id[:40] + ("…" if len(job_id) > 40 else "")
        raise InvalidArgument(f"{shown!r} is not a job id (32 hexadecimal digits, as `podium submit` prints)")
    return job_id
