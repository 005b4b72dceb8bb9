"""Room in the job store, checked where it is spent: at each new job and each batch of paths.

Three limits answer RESOURCE_EXHAUSTED: jobs not yet finished (``max_active_jobs``), Redis
memory (``redis_high_water`` of maxmemory) and images one API key's unfinished jobs hold
unanswered (``max_queued_images_per_owner``), so that one tenant cannot fill Redis for all.
"""

from __future__ import annotations

from gateway.settings import GatewaySettings
from podium.core.errors import ResourceExhausted
from podium.stores.jobstore import JobStore


class Room:
    def __init__(self, settings: GatewaySettings, store: JobStore) -> None:
        self._settings = settings
        self._store = store

    def for_new_job(self, owner: str) -> None:
        limit = self._settings.max_active_jobs
        if self._store.active_jobs() >= limit:
            raise ResourceExhausted(f"the gateway already runs {limit} jobs; try again when some have finished")
        self._memory()
        self._owner_queue(owner, 1)

    def for_paths(self, owner: str, adding: int) -> None:
        """Before a listing appends ``adding`` more paths to a job of ``owner``."""
        self._memory()
        self._owner_queue(owner, adding)

    def _owner_queue(self, owner: str, adding: int) -> None:
        limit = self._settings.max_queued_images_per_owner
        queued = self._store.queued_images(owner)
        if queued + adding > limit:
            raise ResourceExhausted(
                f"this API key's unfinished jobs already hold {queued:,} images waiting, and at most {limit:,} may wait",
                hint="wait for some of them to finish, or cancel one (`podium cancel JOB`)",
            )

    def _memory(self) -> None:
        used = self._store.memory_used_fraction()
        high_water = self._settings.redis_high_water
        if used is not None and used >= high_water:
            raise ResourceExhausted(
                f"the job store (Redis) is {used:.0%} full, above the {high_water:.0%} at which "
                "new jobs are refused; running jobs go on",
                hint="delete finished jobs (`podium delete JOB`), wait for them to expire, or give Redis more memory",
            )
