"""The Redis side of jobs: the job store, its Lua scripts and the Celery chunk queue.

The only code that knows how a job is laid out in Redis. Gateway and workers share it.
"""

from podium.stores.jobstore.cache import CacheKey, ResultCache
from podium.stores.jobstore.chunk_layout import HeldBack
from podium.stores.jobstore.queue import ChunkQueue, make_celery
from podium.stores.jobstore.records import ChunkRecords, JobEndSignal, JobPage, Stamp
from podium.stores.jobstore.store import JobStore

__all__ = [
    "CacheKey",
    "ChunkQueue",
    "ChunkRecords",
    "HeldBack",
    "JobEndSignal",
    "JobPage",
    "JobStore",
    "ResultCache",
    "Stamp",
    "cache",
    "chunk_rates",
    "errors",
    "make_celery",
    "queue",
    "records",
    "schema",
]
