"""The reconciler on fakes: stalled jobs get their unfinished chunks again; dead uploads fail."""

from __future__ import annotations

import time

from gateway.reconciler import Reconciler
from podium.core.jobs import ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore.schema import JobKeys
from tests.support.fakes import FakeQueue, fake_store

OK = ImageOutcome(predictions=(Prediction("archery", 0, 0.9),))


def stalled(store, job_id: str, seconds: float) -> None:
    """Make the job look idle for ``seconds`` (its last change that long ago)."""
    store._redis.hset(JobKeys(job_id).job, "updated_at", time.time() - seconds)


def running_job(store, files: int, chunk_size: int = 2) -> str:
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=chunk_size)
    store.append_files(job.id, 0, [f"{i}.jpg" for i in range(files)], [b"x"] * files)
    store.finish_upload(job.id)
    return job.id


def test_a_stalled_job_gets_its_unfinished_chunks_again():
    store = fake_store()
    queue = FakeQueue(store, max_queued_chunks=2)
    job_id = running_job(store, 6)
    queue.pump(job_id)  # chunks 0 and 1 out
    store.record(job_id, 0, OK)
    store.record(job_id, 1, OK)
    store.complete_chunk(job_id, 0)  # chunk 1's message was lost with its worker
    queue.sent.clear()
    reconciler = Reconciler(store, queue, stall_s=60, upload_stall_s=600)
    assert reconciler.run_once() == 0  # not stalled yet
    stalled(store, job_id, 120)
    assert reconciler.run_once() == 1
    assert queue.sent == [(job_id, 1), (job_id, 2)]  # chunk 1 again, then the next one
    stalled(store, job_id, 120)
    assert reconciler.run_once() == 0  # the lease keeps a second gateway (or round) from resending


def test_a_chunk_a_live_worker_holds_is_not_resent():
    store = fake_store()
    queue = FakeQueue(store, max_queued_chunks=2)
    job_id = running_job(store, 4)
    queue.pump(job_id)
    assert store.acquire_chunk(job_id, 0, "a live worker", 60).taken  # waiting for Triton, say
    queue.sent.clear()
    stalled(store, job_id, 120)
    assert Reconciler(store, queue, stall_s=60, upload_stall_s=600).run_once() == 1
    assert queue.sent == [(job_id, 1)]


def test_an_upload_whose_gateway_died_fails():
    store = fake_store()
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=2)
    reconciler = Reconciler(store, FakeQueue(store), stall_s=60, upload_stall_s=600)
    stalled(store, job.id, 601)
    reconciler.run_once()
    ended = store.get(job.id)
    assert ended.state is JobState.FAILED and "upload was interrupted" in ended.error


def test_finished_jobs_are_not_touched():
    store = fake_store()
    queue = FakeQueue(store)
    job_id = running_job(store, 1)
    store.record(job_id, 0, OK)
    assert store.get(job_id).state is JobState.COMPLETED
    assert Reconciler(store, queue, stall_s=0, upload_stall_s=0).run_once() == 0
    assert queue.sent == []


def test_an_upload_in_hand_is_not_failed_however_long_it_waits():
    """A gateway that holds the upload's lease (renewed, also while backpressure pauses the
    stream during a Triton outage) keeps it; once the lease is gone, the reconciler fails it."""
    from gateway.uploads import upload_lease

    store = fake_store()
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=2)
    reconciler = Reconciler(store, FakeQueue(store), stall_s=60, upload_stall_s=600)
    stalled(store, job.id, 3600)
    assert store.claim(upload_lease(job.id), 60)
    reconciler.run_once()
    assert store.get(job.id).state is JobState.UPLOADING
    store.release_claim(upload_lease(job.id))
    reconciler.run_once()
    assert store.get(job.id).state is JobState.FAILED
