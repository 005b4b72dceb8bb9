"""The JobStore's contract, run against fakeredis in tests/unit and real Redis in tests/component.

The same tests on both keep the fake honest: if fakeredis ever answered a script
differently from redis-server, the component tier would say so.
"""

from __future__ import annotations

import pytest

from jobs import ImageOutcome, JobMode, JobState, Prediction
from jobstore import JobStore

OK = ImageOutcome(predictions=(Prediction("archery", 2, 0.75), Prediction("rugby", 70, 0.125)))
BAD = ImageOutcome(error="not a recognised image format")


def new_job(store: JobStore, files: int, chunk_size: int = 4):
    job = store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size)
    store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(files)], [b"x"] * files)
    return job


class StoreContract:
    """Subclasses provide a ``redis_client`` fixture (a fresh, empty database)."""

    @pytest.fixture
    def store(self, redis_client):
        return JobStore(redis_client, result_ttl_s=3600)

    def test_outcome_encoding_round_trips_and_is_compact(self):
        assert ImageOutcome.decode(OK.encode()) == OK
        assert ImageOutcome.decode(BAD.encode()) == BAD
        assert len(OK.encode()) < 60

    def test_a_repeated_result_is_recorded_once(self, store):
        job = new_job(store, 3)
        store.finish_upload(job.id)
        assert store.record(job.id, 0, OK) is True
        assert store.record(job.id, 0, BAD) is False  # redelivered chunk: no-op
        got = store.get(job.id)
        assert (got.succeeded, got.failed) == (1, 0)
        assert store.results(job.id, 0, 3) == [("img0.jpg", OK), ("img1.jpg", None), ("img2.jpg", None)]

    def test_job_completes_when_every_image_has_a_result(self, store, redis_client):
        job = new_job(store, 2)
        store.record(job.id, 0, OK)
        assert store.get(job.id).state is JobState.UPLOADING
        store.finish_upload(job.id)
        assert store.get(job.id).state is JobState.RUNNING
        store.record(job.id, 1, BAD)
        done = store.get(job.id)
        assert done.state is JobState.COMPLETED and (done.succeeded, done.failed) == (1, 1)
        assert done.finished_at >= done.created_at
        assert store.pending_uploads(job.id) == (0, 0)  # blobs are gone
        assert 0 < redis_client.ttl(f"podium:job:{job.id}") <= 3600
        assert store.active_jobs() == 0

    def test_an_empty_job_completes_at_once(self, store):
        job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=4)
        store.finish_upload(job.id)
        assert store.get(job.id).state is JobState.COMPLETED

    def test_dispatch_keeps_a_bounded_number_of_chunks_queued(self, store):
        job = new_job(store, 10, chunk_size=4)
        # While uploading, only full chunks go out.
        assert store.dispatch(job.id, max_queued_chunks=5) == [0, 1]
        store.finish_upload(job.id)
        assert store.dispatch(job.id, max_queued_chunks=2) == []  # two in flight already
        store.complete_chunk(job.id, 0)
        store.complete_chunk(job.id, 0)  # a repeat does not free a second slot
        assert store.dispatch(job.id, max_queued_chunks=2) == [2]  # the partial last chunk
        store.complete_chunk(job.id, 1)
        assert store.dispatch(job.id, max_queued_chunks=2) == []  # nothing left

    def test_cancel_ends_the_job_and_stops_dispatch_and_recording(self, store):
        job = new_job(store, 8)
        store.finish_upload(job.id)
        assert store.cancel(job.id) is True
        assert store.cancel(job.id) is False
        assert store.get(job.id).state is JobState.CANCELLED
        assert store.dispatch(job.id, 4) == []
        assert store.record(job.id, 0, OK) is False
        assert store.blob(job.id, 0) is None

    def test_a_chunk_lease_is_held_by_one_worker_and_counts_only_deaths(self, store):
        job = new_job(store, 8)
        store.finish_upload(job.id)
        first = store.acquire_chunk(job.id, 0, "worker-a", 60)
        assert (first.outcome, first.value) == ("ok", 1)
        busy = store.acquire_chunk(job.id, 0, "worker-b", 60)
        assert busy.outcome == "busy" and 0 < busy.value <= 60_000
        assert store.chunk_leased(job.id, 0) and not store.chunk_leased(job.id, 1)
        assert store.renew_chunk(job.id, 0, "worker-a", 60) and not store.renew_chunk(job.id, 0, "worker-b", 60)
        store.release_chunk(job.id, 0, "worker-b")  # not the holder: nothing happens
        assert store.chunk_leased(job.id, 0)
        store.release_chunk(job.id, 0, "worker-a")  # an orderly end: not a death
        again = store.acquire_chunk(job.id, 0, "worker-b", 60)
        assert (again.outcome, again.value) == ("ok", 1) and store.get(job.id).retries == 0
        store._redis.delete(f"podium:job:{job.id}:lease:0")  # worker-b died: its lease ran out
        after_death = store.acquire_chunk(job.id, 0, "worker-c", 60)
        assert (after_death.outcome, after_death.value) == ("ok", 2) and store.get(job.id).retries == 1
        store.complete_chunk(job.id, 0)
        store.release_chunk(job.id, 0, "worker-c")
        assert store.acquire_chunk(job.id, 0, "worker-d", 60).outcome == "done"
        store.cancel(job.id)
        assert store.acquire_chunk(job.id, 1, "worker-d", 60).outcome == "ended"

    def test_image_starts_are_counted_until_they_end(self, store):
        job = new_job(store, 4)
        store.finish_upload(job.id)
        assert store.begin_image(job.id, 3) == 0 and store.begin_image(job.id, 3) == 1
        store.end_image(job.id, 3)
        assert store.begin_image(job.id, 3) == 1

    def test_unknown_job(self, store):
        assert store.get("nope") is None
        assert store.record("nope", 0, OK) is False
