"""The JobStore's contract, run against fakeredis in tests/unit and real Redis in tests/component.

The same tests on both keep the fake honest: if fakeredis ever answered a script
differently from redis-server, the component tier would say so.
"""

from __future__ import annotations

import time

import pytest

from podium.core.jobs import ActivationMap, ImageOutcome, JobMode, JobState, Prediction, RecordedOutcome
from podium.stores.jobstore import CacheKey, JobStore, ResultCache
from podium.stores.jobstore.records import Stamp
from podium.stores.jobstore.schema import JobKeys, job_key_name
from tests.support.dispatch_contract import BAD, OK, DispatchContract, new_job
from tests.support.upload_contract import UploadContract


class StoreContract(DispatchContract, UploadContract):
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

    def test_a_chunk_recorded_answers_with_what_its_records_read_back(self, store):
        job = store.create(mode=JobMode.UPLOAD, chunk_size=4, results_url="file:///srv/results")
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(4)], [b"xy"] * 4)
        store.finish_upload(job.id)
        stamps = {0: Stamp("ab" * 32), 1: Stamp(None), 2: Stamp("cd" * 32)}
        kept = store.record_kept(job.id, [(0, OK, False), (1, BAD, False), (2, OK, True)], stamps)
        assert kept == [record for _, record in store.recorded(job.id, 0, 3)]  # the chunk's file, unparsed
        # Redelivered: what was recorded before is not this call's; unstamped, no time or digest.
        assert store.record_kept(job.id, [(0, OK, False), (3, OK, False)]) == [None, RecordedOutcome(OK, 0.0, None)]

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
