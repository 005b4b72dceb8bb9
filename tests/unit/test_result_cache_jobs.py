"""Duplicates answered once on fakes: the result cache within and across jobs, its scope per owner
and per decoding, and single flight among concurrent callers."""

from __future__ import annotations

import threading
import time

import pytest

from podium.core.jobs import JobMode, JobState
from podium.stores.jobstore import ResultCache
from tests.support.fakes import CLASSES, png_bytes
from tests.unit.test_worker_chunks import outcomes, runtime, upload_job
from worker.chunks import process_chunk
from worker.single_flight import SingleFlight


def cached_runtime(**settings):
    rt = runtime(**settings)
    rt.cache = ResultCache(rt.store.client, ttl_s=600, max_entries=100)
    return rt


def pinned_job(rt, blobs, chunk_size=8, owner="") -> str:
    job = rt.store.create(
        mode=JobMode.UPLOAD,
        top_k=2,
        chunk_size=chunk_size,
        model_name="resnet50_sports",
        model_version="1",
        owner=owner,
    )
    rt.store.append_files(job.id, 0, [f"img{i}.png" for i in range(len(blobs))], blobs)
    rt.store.finish_upload(job.id)
    return job.id


def test_duplicates_within_and_across_jobs_are_classified_once():
    rt = cached_runtime()
    model = rt.classifiers.models["resnet50_sports"]
    twins = [png_bytes(10), png_bytes(250), png_bytes(10), png_bytes(10)]
    first = pinned_job(rt, twins)
    process_chunk(rt, first, 0)
    done = rt.store.get(first)
    assert done.state is JobState.COMPLETED and (done.succeeded, done.cached) == (4, 2)
    assert sum(model.batches) == 2  # two distinct images reached the model
    second = pinned_job(rt, twins)
    process_chunk(rt, second, 0)
    again = rt.store.get(second)
    assert (again.succeeded, again.cached) == (4, 4) and sum(model.batches) == 2
    assert outcomes(rt, second) == outcomes(rt, first)
    assert outcomes(rt, first)[0].predictions[0].label == CLASSES[0]


def test_without_the_cache_or_a_pinned_version_every_image_is_classified():
    rt = runtime()  # PODIUM_RESULT_CACHE=false: no cache object
    job_id = upload_job(rt, [png_bytes(10)] * 3, chunk_size=8)
    process_chunk(rt, job_id, 0)
    assert rt.store.get(job_id).cached == 0 and sum(rt.classifiers.models["resnet50_sports"].batches) == 3
    rt = cached_runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 3, chunk_size=8)  # no model version: "newest" may change
    process_chunk(rt, job_id, 0)
    assert rt.store.get(job_id).cached == 0 and rt.cache.size() == 0


def test_a_bad_image_is_not_kept_in_the_cache():
    rt = cached_runtime()
    job_id = pinned_job(rt, [b"not an image", b"not an image"])
    process_chunk(rt, job_id, 0)
    job = rt.store.get(job_id)
    assert (job.failed, job.cached) == (2, 0) and rt.cache.size() == 0


def test_single_flight_shares_one_computation_among_concurrent_callers():
    flight: SingleFlight[int] = SingleFlight()
    entered, release, calls = threading.Event(), threading.Event(), []

    def slow() -> int:
        calls.append(1)
        entered.set()
        release.wait(5)
        return 42

    results = []
    leader = threading.Thread(target=lambda: results.append(flight.run("k", slow)))
    leader.start()
    entered.wait(5)
    follower = threading.Thread(target=lambda: results.append(flight.run("k", slow)))
    follower.start()
    time.sleep(0.05)
    release.set()
    leader.join(5)
    follower.join(5)
    assert sorted(results) == [(42, False), (42, True)] and len(calls) == 1
    assert flight.run("k", lambda: 7) == (7, False)  # nothing in flight any more


def test_single_flight_passes_an_error_to_every_waiter():
    flight: SingleFlight[int] = SingleFlight()

    def broken() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        flight.run("k", broken)
    assert flight.run("k", lambda: 1) == (1, False)


@pytest.mark.parametrize(("scope", "b_cached"), [("owner", 0), ("shared", 2)])
def test_cached_answers_are_scoped_to_their_owner_unless_shared(scope, b_cached):
    rt = cached_runtime(result_cache_scope=scope)
    blobs = [png_bytes(10), png_bytes(250)]
    first, second = pinned_job(rt, blobs, owner="owner-a"), pinned_job(rt, blobs, owner="owner-b")
    process_chunk(rt, first, 0)
    process_chunk(rt, second, 0)
    assert rt.store.get(first).cached == 0
    assert rt.store.get(second).cached == b_cached  # owner B learns nothing of A's files by default
    third = pinned_job(rt, blobs, owner="owner-a")
    process_chunk(rt, third, 0)
    assert rt.store.get(third).cached == 2  # an owner's own duplicates are still answered once


def test_answers_decoded_one_way_are_not_served_to_jobs_decoded_the_other():
    blobs = [png_bytes(10), png_bytes(250)]
    fast = cached_runtime(decode="fast")
    exact = cached_runtime(store=fast.store, decode="exact")
    exact.cache = fast.cache
    process_chunk(fast, pinned_job(fast, blobs), 0)
    again = pinned_job(exact, blobs)
    process_chunk(exact, again, 0)
    assert exact.store.get(again).cached == 0
