"""JobStore: the only code that knows how jobs are laid out in Redis."""

from __future__ import annotations

import redis

from podium.core.settings import DEFAULT_RESULT_TTL_S
from podium.stores.jobstore.chunk_leases import ChunkLeases
from podium.stores.jobstore.claims import JobKeyBindings, NamedClaims
from podium.stores.jobstore.errors import convert_redis_errors
from podium.stores.jobstore.job_records import JobRecords
from podium.stores.jobstore.outcomes import Outcomes
from podium.stores.jobstore.upload_files import UploadFiles
from podium.stores.jobstore.webhook_deliveries import WebhookDeliveries

SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
# A pooled connection idle this long is pinged before use (a restarted Redis is noticed).
HEALTH_CHECK_INTERVAL_S = 15


@convert_redis_errors
class JobStore(JobRecords, UploadFiles, Outcomes, ChunkLeases, WebhookDeliveries, NamedClaims, JobKeyBindings):
    """The one Redis client of the job store, and its roles over one schema, each in its own
    module: job records (``job_records``), upload files (``upload_files``), outcomes
    (``outcomes``), chunk leases (``chunk_leases``), webhook deliveries
    (``webhook_deliveries``), named claims and job keys (``claims``). Every change of a job's
    state is one atomic Lua step (``scripts``)."""

    def __init__(self, client: redis.Redis, result_ttl_s: int = DEFAULT_RESULT_TTL_S) -> None:
        self._redis = client
        self._ttl_s = result_ttl_s

    @classmethod
    def from_url(
        cls, url: str, result_ttl_s: int = DEFAULT_RESULT_TTL_S, socket_timeout_s: float = SOCKET_TIMEOUT_S
    ) -> JobStore:
        """A store on a client whose calls give up after ``socket_timeout_s``: a frozen Redis
        becomes StoreUnavailable within seconds instead of a hung thread."""
        client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=min(socket_timeout_s, CONNECT_TIMEOUT_S),
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            socket_keepalive=True,
        )
        return cls(client, result_ttl_s)

    @property
    def client(self) -> redis.Redis:
        """The Redis client, for the stores that share it (the result cache)."""
        return self._redis

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def queue_length(self, queue: str) -> int:
        """Chunk tasks waiting in a Celery queue (a Redis list of the same name)."""
        return int(self._redis.llen(queue))

    def used_memory_bytes(self) -> int:
        return int(self._redis.info("memory")["used_memory"])  # all of Redis's, in bytes

    def memory_used_fraction(self) -> float | None:
        """Redis's used memory as a fraction of its maxmemory; None when it has no limit."""
        memory = self._redis.info("memory")
        limit = int(memory.get("maxmemory", 0))
        return int(memory["used_memory"]) / limit if limit else None
