"""The Celery side of jobs: one place for the broker settings and for enqueuing chunks.

The gateway enqueues by task name, so it needs neither the worker's code nor its
dependencies. A job keeps at most ``max_queued_chunks`` chunks queued; each finished
chunk enqueues the job's next one, so jobs share the workers round-robin.
"""

from __future__ import annotations

from celery import Celery

from podium.core.settings import DEFAULT_VISIBILITY_TIMEOUT_S
from podium.stores.jobstore.chunk_layout import HeldBack
from podium.stores.jobstore.store import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, JobStore

PROCESS_CHUNK_TASK = "podium.process_chunk"
QUEUE_NAME = "podium"


def make_celery(broker_url: str, visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S) -> Celery:
    app = Celery("podium", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_NAME,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s,
            # A frozen Redis must time out, not hang a publishing gateway thread.
            "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_keepalive": True,
        },
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


class ChunkQueue:
    """Enqueues the chunks a job may have queued now."""

    def __init__(self, store: JobStore, celery: Celery, max_queued_chunks: int) -> None:
        self._store = store
        self._celery = celery
        self._max_queued = max_queued_chunks

    def pump(self, job_id: str, partial: bool | HeldBack = HeldBack.NO) -> int:
        """Enqueue as many of the job's next chunks as it may have queued now (``partial``: an
        upload's files that fill no whole chunk yet too, ``ChunkLeases.dispatch``)."""
        chunks = self._store.dispatch(job_id, self._max_queued, partial)
        for chunk in chunks:
            self.send(job_id, chunk)
        return len(chunks)

    def send(self, job_id: str, chunk: int) -> None:
        self._celery.send_task(PROCESS_CHUNK_TASK, args=[job_id, chunk], queue=QUEUE_NAME)
