"""The Redis side of jobs: the job store, its Lua scripts and the Celery chunk queue.

The only code that knows how a job is laid out in Redis. Gateway and workers share it.
"""

from jobstore.cache import CacheKey, ResultCache
from jobstore.queue import ChunkQueue, make_celery
from jobstore.records import ChunkRecords, JobEndSignal, JobPage, Stamp
from jobstore.store import JobStore

__all__ = [
    "CacheKey",
    "ChunkQueue",
    "ChunkRecords",
    "JobEndSignal",
    "JobPage",
    "JobStore",
    "ResultCache",
    "Stamp",
    "make_celery",
]
