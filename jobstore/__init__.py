"""The Redis side of jobs: the job store, its Lua scripts and the Celery chunk queue.

The only code that knows how a job is laid out in Redis. Gateway and workers share it.
"""

from jobstore.cache import CacheKey, ResultCache
from jobstore.queue import ChunkQueue, make_celery
from jobstore.records import JobEndSignal, JobPage
from jobstore.store import JobStore

__all__ = ["CacheKey", "ChunkQueue", "JobEndSignal", "JobPage", "JobStore", "ResultCache", "make_celery"]
