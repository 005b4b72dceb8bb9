"""A worker's hold on one chunk: renewed while it works, released when it stops in order.

The lease is what lets a second copy of a running chunk (a redelivery after the broker's
visibility timeout, or a reconciler resend) back off instead of running in parallel, and
what tells a real crash apart: a start that never released its lease died with its process.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

from podium.stores.jobstore import JobStore
from podium.stores.jobstore.errors import StoreFull, StoreUnavailable

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews a chunk's lease every third of its length until the ``with`` block ends, then
    releases it. A release Redis could not take is kept in ``unreleased`` for the next task."""

    def __init__(
        self, store: JobStore, job_id: str, chunk: int, token: str, lease_s: float, unreleased: list[tuple]
    ) -> None:
        self._store, self._job_id, self._chunk, self._token = store, job_id, chunk, token
        self._lease_s = lease_s
        self._unreleased = unreleased
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"podium-lease-{chunk}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._store.release_chunk(self._job_id, self._chunk, self._token)
        except (StoreUnavailable, StoreFull):
            self._unreleased.append((self._job_id, self._chunk, self._token))

    def _renew(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                if not self._store.renew_chunk(self._job_id, self._chunk, self._token, self._lease_s):
                    log.warning(
                        "job %s chunk %d: lease lost (expired); another copy may run", self._job_id, self._chunk
                    )
            except (StoreUnavailable, StoreFull) as exc:
                log.warning("job %s chunk %d: cannot renew the lease: %s", self._job_id, self._chunk, exc)


def release_leftovers(store: JobStore, unreleased: list[tuple]) -> None:
    """Release what earlier tasks of this process could not (Redis was away)."""
    while unreleased:
        store.release_chunk(*unreleased[0])
        unreleased.pop(0)
