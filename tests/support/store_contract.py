"""The JobStore's contract, run against fakeredis in tests/unit and real Redis in tests/component.

The same tests on both keep the fake honest: if fakeredis ever answered a script
differently from redis-server, the component tier would say so.
"""

from __future__ import annotations

import time

import pytest

from podium.core.jobs import ActivationMap, ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore import CacheKey, HeldBack, JobStore, ResultCache
from podium.stores.jobstore.chunk_rates import ChunkRates
from podium.stores.jobstore.records import Stamp
from podium.stores.jobstore.schema import JobKeys, job_key_name

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

    def test_chunks_grow_at_the_dispatch_frontier_once_the_workers_measure_a_rate(self, store, redis_client):
        job = _growing_job(store, 60)
        assert store.dispatch(job.id, 1) == [0]  # nothing measured: the first chunks' size
        ChunkRates(redis_client).note("m", 8, 1.0)  # a worker does 8 images a second
        assert store.dispatch(job.id, 3) == [1, 2]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(3)] == [(0, 2), (2, 8), (10, 8)]
        ChunkRates(redis_client).note("m", 1000, 1.0)
        assert store.dispatch(job.id, 3) == [] and store.chunk_layout(job.id) == layout  # none has ended
        assert store.record_many(job.id, [(i, OK, False) for i in range(18)], {}) == [True] * 18
        # Chunk 1's file landed: its 8 records leave Redis, and its done mark refuses a repeat.
        store.complete_chunk(job.id, 1)
        held = [record is not None for _, record in store.recorded(job.id, 0, 18)]
        assert held == [True] * 2 + [False] * 8 + [True] * 8
        assert store.record(job.id, 9, OK) is False
        assert store.chunk_records(job.id, 1, 2, 8).done is True
        assert store.chunk_records(job.id, 2, 10, 8).done is False
        store.complete_chunk(job.id, 0)
        store.complete_chunk(job.id, 2)
        assert store.get(job.id).state is JobState.RUNNING

    def test_a_jobs_last_chunks_share_out_what_is_left(self, store, redis_client):
        """Near the end each chunk takes a share of the images left (in as many parts as chunks
        may be in flight, never fewer images than the first chunks'), so the workers finish
        together; the partial last chunk and the job's completion follow the layout."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_job(store, 42)
        assert store.dispatch(job.id, 4) == [0, 1, 2, 3]
        layout = store.chunk_layout(job.id)
        # 42 left in 4 parts: 11 (8 at most); 34: 9 -> 8; 26: 7; 19: 5.
        assert [layout.span(c) for c in range(4)] == [(0, 8), (8, 8), (16, 7), (23, 5)]
        assert store.record_many(job.id, [(i, OK, False) for i in range(28)], {}) == [True] * 28
        for chunk in range(4):
            store.complete_chunk(job.id, chunk)
        assert store.dispatch(job.id, 4) == [4, 5, 6, 7]
        layout = store.chunk_layout(job.id)
        # 14 left: 4; 10: 3; 7: 2; 5: 2 (the first chunks' size is the fewest).
        assert [layout.span(c) for c in range(4, 8)] == [(28, 4), (32, 3), (35, 2), (37, 2)]
        assert store.record_many(job.id, [(i, OK, False) for i in range(28, 39)], {}) == [True] * 11
        for chunk in range(4, 8):
            store.complete_chunk(job.id, chunk)
        assert store.dispatch(job.id, 4) == [8, 9]
        assert store.chunk_layout(job.id).span(9) == (41, 2)  # the partial last chunk
        assert layout.count(42) == store.chunk_layout(job.id).count(42) == 10
        assert store.record_many(job.id, [(i, OK, False) for i in range(39, 42)], {}) == [True] * 3
        assert store.complete_chunk(job.id, 8) is False
        assert store.complete_chunk(job.id, 9) is True

    def test_an_upload_or_a_job_without_a_growth_bound_keeps_its_chunk_size(self, store, redis_client):
        ChunkRates(redis_client).note("m", 1000, 1.0)
        upload = store.create(mode=JobMode.UPLOAD, chunk_size=2, model_name="m")
        store.append_files(upload.id, 0, [f"img{i}.jpg" for i in range(6)], [b"x"] * 6)
        store.finish_upload(upload.id)
        assert store.dispatch(upload.id, 5) == [0, 1, 2]
        assert store.chunk_layout(upload.id).span(2) == (4, 2)

    def test_an_upload_held_back_sends_the_files_that_arrived_as_a_smaller_chunk(self, store, redis_client):
        """Held back with none of its chunks in flight, an upload sends what arrived as one
        smaller chunk; the chunks after it take a quarter of that many, and grow no more."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 300)
        assert store.dispatch(job.id, 5) == [0]  # grown to 256: only whole chunks, unless held back
        assert store.dispatch(job.id, 5, partial=True) == []  # chunk 0 in flight will make room
        _process(store, job.id, 0)
        assert store.dispatch(job.id, 5, partial=True) == [1]  # the 44 files that arrived
        assert store.dispatch(job.id, 5, partial=True) == []  # nothing more arrived
        store.append_files(job.id, 300, [f"img{i}.jpg" for i in range(300, 323)], [b"x"] * 23)
        assert store.dispatch(job.id, 5) == [2, 3]  # 11 each (a quarter of 44), whatever the rate
        store.finish_upload(job.id)
        assert store.dispatch(job.id, 5) == [4]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(5)] == [(0, 256), (256, 44), (300, 11), (311, 11), (322, 11)]
        assert [layout.chunk_of(i) for i in (255, 256, 299, 300, 311, 322)] == [0, 1, 1, 2, 3, 4]
        assert layout.count(323) == 5
        for chunk in range(1, 5):
            _process(store, job.id, chunk)
        assert store.get(job.id).state is JobState.COMPLETED

    def test_an_upload_held_back_again_and_again_keeps_its_layout_short(self, store, redis_client):
        """Each cut sizes the chunks after it to what fits, so a long upload that is held back
        all along adds a few segments to its layout, not two per chunk."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 0)
        sent = 0

        def pump_and_process(partial: bool) -> None:  # workers that are never behind
            nonlocal sent
            while chunks := store.dispatch(job.id, 5, partial):
                for chunk in chunks:
                    _process(store, job.id, chunk)
                sent += len(chunks)

        for cycle in range(50):  # 7 files arrive each time the upload is held back
            store.append_files(job.id, cycle * 7, [f"img{i}.jpg" for i in range(cycle * 7, cycle * 7 + 7)], [b"x"] * 7)
            pump_and_process(True)
        store.finish_upload(job.id)
        pump_and_process(False)
        assert store.get(job.id).state is JobState.COMPLETED
        layout = store.chunk_layout(job.id)
        assert len(layout.segments) <= 4  # the first size, the cut, the quarter after it
        assert sent == layout.count(350)

    def test_an_upload_held_by_redis_memory_keeps_at_least_half_its_chunk_size(self, store, redis_client):
        """Held by Redis's memory, what arrived says little of an upload's room: the two files
        that a passing high-water mark found go out as a chunk, and the chunks after it keep
        half their size, not a quarter of two (one image a chunk to the job's end)."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 258)
        assert store.dispatch(job.id, 5) == [0]  # grown to 256
        _process(store, job.id, 0)
        assert store.dispatch(job.id, 5, HeldBack.BY_REDIS_MEMORY) == [1]  # the 2 files that arrived
        store.append_files(job.id, 258, [f"img{i}.jpg" for i in range(258, 558)], [b"x"] * 300)
        assert store.dispatch(job.id, 5) == [2, 3]  # 128 each, whatever the rate; 44 wait
        store.finish_upload(job.id)
        assert store.dispatch(job.id, 5) == [4]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(5)] == [(0, 256), (256, 2), (258, 128), (386, 128), (514, 128)]
        for chunk in range(1, 5):
            _process(store, job.id, chunk)
        assert store.get(job.id).state is JobState.COMPLETED

    def test_an_upload_held_by_redis_memory_again_and_again_keeps_its_layout_short(self, store, redis_client):
        """Holds that persist halve the chunks each time, down to what arrives between them:
        two segments a halving, not two per chunk."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 0)
        sent = 0
        for cycle in range(50):  # 7 files arrive each time the upload is held back
            store.append_files(job.id, cycle * 7, [f"img{i}.jpg" for i in range(cycle * 7, cycle * 7 + 7)], [b"x"] * 7)
            while chunks := store.dispatch(job.id, 5, HeldBack.BY_REDIS_MEMORY):
                for chunk in chunks:
                    _process(store, job.id, chunk)
                sent += len(chunks)
        store.finish_upload(job.id)
        while chunks := store.dispatch(job.id, 5):
            for chunk in chunks:
                _process(store, job.id, chunk)
            sent += len(chunks)
        assert store.get(job.id).state is JobState.COMPLETED
        layout = store.chunk_layout(job.id)
        assert len(layout.segments) <= 2 + 2 * 8  # the first sizes, then a cut and a size per halving of 256
        assert sent == layout.count(350)

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

    # --- the job list, failure limits, the cached count, webhooks, the result cache -----

    def test_the_job_list_is_newest_first_paged_filtered_and_forgets_expired_jobs(self, store, redis_client):
        made = [store.create(mode=JobMode.UPLOAD, chunk_size=4, name=f"season {i}", owner="a") for i in range(5)]
        other = store.create(mode=JobMode.UPLOAD, chunk_size=4, name="other's", owner="b")
        store.cancel(made[1].id)
        mine = lambda job: job.owner == "a"
        first = store.list_jobs(2, visible=mine)
        assert [job.id for job in first.jobs] == [made[4].id, made[3].id] and first.next_cursor
        rest = store.list_jobs(10, first.next_cursor, visible=mine)
        assert [job.id for job in rest.jobs] == [made[2].id, made[1].id, made[0].id] and rest.next_cursor == ""
        assert other.id not in {job.id for job in store.list_jobs(100).jobs[1:]}  # newest is other's
        cancelled = store.list_jobs(10, visible=lambda job: job.state is JobState.CANCELLED)
        assert [job.id for job in cancelled.jobs] == [made[1].id]
        redis_client.delete(f"podium:job:{made[0].id}")  # expired
        assert made[0].id not in {job.id for job in store.list_jobs(100).jobs}
        assert redis_client.zscore("podium:jobs", made[0].id) is None  # pruned from the index
        store.delete(made[2].id)
        assert redis_client.zscore("podium:jobs", made[2].id) is None

    def test_a_failure_count_limit_ends_the_job_as_failed(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4, max_failed="1")
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(5)], [b"x"] * 5)
        store.finish_upload(job.id)
        store.record(job.id, 0, BAD)
        store.record(job.id, 1, OK)
        assert store.get(job.id).state is JobState.RUNNING  # 1 failure is allowed
        store.record(job.id, 2, BAD)
        failed = store.get(job.id)
        assert failed.state is JobState.FAILED and failed.max_failed == "1"
        assert failed.error.startswith("2 images failed, more than the job allows (max_failed 1)")
        assert store.record(job.id, 3, OK) is False  # the rest are not processed
        assert store.active_jobs() == 0

    def test_a_chunk_of_results_is_recorded_in_one_call_exactly_as_one_by_one(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4)
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(4)], [b"xy"] * 4)
        store.finish_upload(job.id)
        assert store.record_many(job.id, [(0, OK, False), (1, BAD, False), (2, OK, True)]) == [True, True, True]
        # A redelivered chunk records nothing twice; the new image is recorded.
        assert store.record_many(job.id, [(0, OK, False), (2, OK, True), (3, OK, False)]) == [False, False, True]
        done = store.get(job.id)
        assert (done.succeeded, done.failed, done.cached, done.state) == (3, 1, 1, JobState.COMPLETED)
        assert [outcome for _, outcome in store.results(job.id, 0, 4)] == [OK, BAD, OK, OK]
        assert store.record_many(job.id, []) == []

    def test_a_job_with_a_results_sink_completes_when_its_last_chunk_is_committed(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=2, results_url="file:///srv/results")
        assert job.results_url == "file:///srv/results"
        store.append_files(job.id, 0, ["a.jpg", "b.jpg", "c.jpg"], [b"x"] * 3)
        store.finish_upload(job.id)
        stamps = {0: Stamp("ab" * 32), 1: Stamp(None), 2: Stamp("cd" * 32)}
        assert store.record_many(job.id, [(0, OK, False), (1, BAD, False), (2, OK, False)], stamps) == [True] * 3
        # Every image answered, but no chunk's file has landed: the job runs on.
        assert store.get(job.id).state is JobState.RUNNING
        recorded = store.recorded(job.id, 0, 3)  # what the chunks' files are made of
        assert [path for path, _ in recorded] == ["a.jpg", "b.jpg", "c.jpg"]
        assert [r.outcome for _, r in recorded] == [OK, BAD, OK]
        assert [r.sha256 for _, r in recorded] == ["ab" * 32, None, "cd" * 32]
        assert all(abs(r.finished_at - time.time()) < 60 for _, r in recorded)
        assert store.complete_chunk(job.id, 1) is False
        assert store.complete_chunk(job.id, 1) is False  # counted once
        # Chunk 1's file landed: its records left Redis, and its done mark refuses a late repeat.
        held = store.chunk_records(job.id, 1, 2, 2)
        assert (held.done, held.records) == (True, [("c.jpg", None)])
        assert store.record(job.id, 2, OK, stamp=Stamp(None)) is False
        assert store.chunk_records(job.id, 0, 0, 2).done is False
        assert store.get(job.id).state is JobState.RUNNING
        assert store.complete_chunk(job.id, 0) is True  # the last one completes the job
        done = store.get(job.id)
        assert (done.state, done.succeeded, done.failed) == (JobState.COMPLETED, 2, 1)
        # A completed job's answers are in its files: Redis keeps only the job's record.
        assert store.job_keys(job.id) == [f"podium:job:{job.id}"]

    def test_a_job_with_a_results_sink_that_ends_otherwise_keeps_what_was_not_in_files(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=2, results_url="file:///srv/results")
        store.append_files(job.id, 0, ["a.jpg", "b.jpg", "c.jpg"], [b"x"] * 3)
        store.finish_upload(job.id)
        store.record_many(job.id, [(0, OK, False), (1, OK, False), (2, OK, False)], {})
        store.complete_chunk(job.id, 0)
        store.cancel(job.id)
        # Paths for the unprocessed images' lines, chunk 1's record (its file never landed).
        assert [r is None for _, r in store.recorded(job.id, 0, 3)] == [True, True, False]
        assert [path for path, _ in store.recorded(job.id, 0, 3)] == ["a.jpg", "b.jpg", "c.jpg"]

    def test_a_job_without_a_sink_keeps_its_records_unstamped(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=2)
        store.append_files(job.id, 0, ["a.jpg"], [b"x"])
        store.finish_upload(job.id)
        assert store.record(job.id, 0, OK)
        assert store.get(job.id).state is JobState.COMPLETED  # by its answers alone
        assert store.recorded(job.id, 0, 1)[0][1].sha256 is None
        assert store.recorded(job.id, 0, 1)[0][1].finished_at == 0.0

    def test_a_failure_limit_reached_inside_a_chunk_stops_its_rest(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4, max_failed="1")
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(4)], [b"x"] * 4)
        store.finish_upload(job.id)
        assert store.record_many(job.id, [(0, BAD, False), (1, BAD, False), (2, OK, False)]) == [True, True, False]
        failed = store.get(job.id)
        assert failed.state is JobState.FAILED and failed.error.startswith("2 images failed")
        assert store.pending_uploads(job.id) == (0, 0)

    def test_a_failure_percentage_waits_for_the_total(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4, max_failed="25%")
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(2)], [b"x"] * 2)
        store.record(job.id, 0, BAD)
        store.record(job.id, 1, BAD)
        assert store.get(job.id).state is JobState.UPLOADING  # 2 of ? so far: the total is not known
        store.append_files(job.id, 2, [f"img{i}.jpg" for i in range(2, 10)], [b"x"] * 8)
        store.finish_upload(job.id)  # 2 of 10 = 20% <= 25%
        assert store.get(job.id).state is JobState.RUNNING
        store.record(job.id, 2, BAD)  # 30%
        failed = store.get(job.id)
        assert failed.state is JobState.FAILED and "max_failed 25% of 10" in failed.error

    def test_cached_outcomes_are_counted(self, store):
        job = new_job(store, 2)
        store.finish_upload(job.id)
        store.record(job.id, 0, OK, cached=True)
        store.record(job.id, 0, OK, cached=True)  # a repeat counts nothing
        store.record(job.id, 1, OK)
        done = store.get(job.id)
        assert (done.succeeded, done.cached, done.state) == (2, 1, JobState.COMPLETED)

    def test_an_ended_job_with_a_webhook_is_queued_once_for_delivery(self, store):
        hooked = store.create(mode=JobMode.UPLOAD, chunk_size=4, webhook="http://127.0.0.1:9/hook")
        plain = store.create(mode=JobMode.UPLOAD, chunk_size=4)
        for job in (hooked, plain):
            store.finish_upload(job.id)  # empty: completes at once
        store.cancel(hooked.id)  # already over: not queued again
        assert store.take_webhook(0.1, lease_s=1) == hooked.id
        assert store.take_webhook(0.1) is None
        # A delivery in hand (its lease alive) stays with its gateway: another replica's sweep leaves it.
        assert store.requeue_webhooks() == 0
        assert store.renew_webhook_lease(hooked.id, 1)
        time.sleep(1.2)  # the gateway "died": no renewal, the lease runs out
        assert store.requeue_webhooks() == 1
        assert store.take_webhook(0.1) == hooked.id
        store.webhook_sent(hooked.id)
        assert store.requeue_webhooks() == 0 and not store.renew_webhook_lease(hooked.id, 60)

    def test_the_result_cache_keeps_answers_and_bounds_itself(self, redis_client):
        cache = ResultCache(redis_client, ttl_s=600, max_entries=4)
        key = CacheKey("resnet50_sports", "3", 5, False)
        keys = [key.of(bytes([i])) for i in range(8)]
        assert cache.get(keys[0]) is None
        cache.put(keys[0], OK)
        cache.put(keys[1], BAD)  # errors are not kept
        assert cache.get(keys[0]) == OK and cache.get(keys[1]) is None
        for index in range(1, 8):
            cache.put(keys[index], OK)
            assert cache.size() <= 4  # the bound
        found = cache.get_many(keys)
        assert list(found) == keys[-len(found) :] and len(found) >= 2  # the newest half at least
        assert all(0 < redis_client.ttl(name) <= 600 for name in redis_client.scan_iter(match="podium:cache:[0-9]*"))
        assert cache.clear() == cache.size() + len(found) and cache.size() == 0 and cache.get(keys[7]) is None

    def test_the_result_cache_gives_back_the_answer_it_was_given(self, redis_client):
        explained = ImageOutcome(
            predictions=(Prediction("rugby é", 70, 0.8123457), Prediction("polo", 65, 1e-07), Prediction("x", 2, 0.0)),
            cam=ActivationMap.of(70, (7, 7), [i / 48 for i in range(49)]),
        )
        raw = ImageOutcome(predictions=(Prediction("archery", 0, 0.123456789123),))
        cache = ResultCache(redis_client)
        keys = [CacheKey("m", "1", 3, True).of(b"a"), CacheKey("m", "1", 1, False).of(b"a")]
        cache.put_many([(keys[0], explained), (keys[1], raw)])
        # Another process (its own label numbers' memo) reads the same answers.
        found = ResultCache(redis_client).get_many(keys)
        assert found[keys[0]] == explained
        assert found[keys[1]] == ImageOutcome.decode(raw.encode())  # 7 decimals, as a recorded answer keeps

    def test_a_job_key_names_its_job_as_long_as_the_job_is_kept(self, store, redis_client):
        """The binding is made with a short TTL (the upload's deadline); ending the job extends
        it to the job's own, so a long job's key cannot start a duplicate near its end."""
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4, job_key="nightly")
        assert store.bind_job_key("owner-a", "nightly", job.id, ttl_s=30) == job.id
        assert store.bind_job_key("owner-a", "nightly", "someone-else", ttl_s=30) == job.id
        store.finish_upload(job.id)  # empty: ends at once
        name = job_key_name("owner-a", "nightly")
        assert redis_client.ttl(name) > 30 and abs(redis_client.ttl(name) - redis_client.ttl(JobKeys(job.id).job)) <= 1
        assert store.job_for_key("owner-a", "nightly") == job.id

    def test_cache_keys_differ_by_everything_that_shapes_the_answer(self):
        data = b"the same bytes"
        base = CacheKey("resnet50_sports", "3", 5, False)
        variants = [base, CacheKey("other", "3", 5, False), CacheKey("resnet50_sports", "4", 5, False)]
        variants += [CacheKey("resnet50_sports", "3", 1, False), CacheKey("resnet50_sports", "3", 5, True)]
        variants += [CacheKey("resnet50_sports", "3", 5, False, decode="fast")]
        variants += [
            CacheKey("resnet50_sports", "3", 5, False, scope="owner-a"),
            CacheKey("resnet50_sports", "3", 5, False, scope="owner-b"),
        ]
        assert len({key.of(data) for key in variants}) == len(variants)
        assert base.of(data) == base.of(bytes(data)) != base.of(data + b"!")


def _growing_upload(store, files: int):
    """An upload of ``files`` files so far whose chunks start at 64 images and may grow to 256."""
    job = store.create(mode=JobMode.UPLOAD, chunk_size=64, max_chunk_size=256, chunk_seconds=1.0, model_name="m")
    if files:
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(files)], [b"x"] * files)
    return job


def _process(store, job_id: str, chunk: int) -> None:
    """A worker's run of ``chunk``: each of its images recorded, then the chunk counted done."""
    first, size = store.chunk_layout(job_id).span(chunk)
    count = min(size, store.get(job_id).total - first)
    assert store.record_many(job_id, [(i, OK, False) for i in range(first, first + count)], {}) == [True] * count
    store.complete_chunk(job_id, chunk)


def _growing_job(store, images: int):
    """A path job of ``images`` files whose chunks start at 2 images and may grow to 8."""
    job = store.create(
        mode=JobMode.PATH, chunk_size=2, max_chunk_size=8, chunk_seconds=1.0, model_name="m",
        results_url="file:///srv/results",
    )  # fmt: skip
    store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(images)])
    store.finish_upload(job.id)
    return job
