"""Archive features on fakes: the job list, failure limits, duplicates answered once, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest

from errors import InvalidArgument
from gateway.access import ANONYMOUS, Caller
from gateway.service import JobOptions
from gateway.webhooks import WebhookSender, checked_webhook, payload, signature
from jobs import FailureLimit, JobMode, JobState
from jobstore import ResultCache
from tests.support.fakes import CLASSES, png_bytes
from tests.unit.test_gateway_service import files, service
from tests.unit.test_worker_chunks import outcomes, runtime, upload_job
from worker.chunks import process_chunk
from worker.single_flight import SingleFlight

# --- failure limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("", FailureLimit()),
        ("0", FailureLimit(count=0)),
        ("12", FailureLimit(count=12)),
        (" 5% ", FailureLimit(percent=5)),
    ],
)
def test_max_failed_reads_a_count_or_a_percentage(text, limit):
    assert FailureLimit.parse(text) == limit
    assert FailureLimit.parse(limit.text) == limit


@pytest.mark.parametrize("text", ["ten", "-1", "1.5", "100%", "5%%", "%"])
def test_a_bad_max_failed_is_an_invalid_argument(text):
    with pytest.raises(InvalidArgument, match="max_failed"):
        FailureLimit.parse(text)


# --- the job list ---------------------------------------------------------------------


def test_list_shows_each_caller_their_own_jobs_and_an_admin_all():
    jobs = service()
    alice, bob, admin = Caller("alice"), Caller("bob"), Caller("root", admin=True)
    a1 = jobs.submit_upload(JobOptions(name="Olympics 2024"), alice, files("a"))
    b1 = jobs.submit_upload(JobOptions(name="league"), bob, files("b"))
    a2 = jobs.submit_upload(JobOptions(name="olympics 2028"), alice, files("c"))
    assert [job.id for job in jobs.list(alice).jobs] == [a2.id, a1.id]
    assert [job.id for job in jobs.list(admin).jobs] == [a2.id, b1.id, a1.id]
    assert [job.id for job in jobs.list(alice, name="OLYMPICS 2024").jobs] == [a1.id]
    assert jobs.list(alice, state=JobState.COMPLETED).jobs == []
    assert [job.id for job in jobs.list(bob, state=JobState.RUNNING).jobs] == [b1.id]
    page = jobs.list(admin, page_size=1)
    assert [job.id for job in jobs.list(admin, page_size=5, page_token=page.next_cursor).jobs] == [b1.id, a1.id]


@pytest.mark.parametrize(("size", "token"), [(-1, ""), (1001, ""), (10, "not-a-cursor")])
def test_bad_list_requests_are_invalid_arguments(size, token):
    with pytest.raises(InvalidArgument):
        service().list(ANONYMOUS, size, token)


# --- job options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (JobOptions(webhook="ftp://example.org/x"), "webhook"),
        (JobOptions(webhook="http:///path-only"), "webhook"),
        (JobOptions(webhook="http://x/" + "a" * 2000), "webhook"),
        (JobOptions(max_failed="lots"), "max_failed"),
    ],
)
def test_bad_archive_options_are_refused_before_a_job_exists(options, message):
    jobs = service()
    with pytest.raises(InvalidArgument, match=message):
        jobs.submit_upload(options, ANONYMOUS, files("a"))
    assert jobs.store.active_jobs() == 0 and jobs.list(ANONYMOUS).jobs == []


def test_options_are_kept_on_the_job():
    jobs = service()
    job = jobs.submit_upload(JobOptions(webhook="https://hooks.example/p?t=1", max_failed="10%"), ANONYMOUS, files("a"))
    assert (job.webhook, job.max_failed) == ("https://hooks.example/p?t=1", "10%")
    assert checked_webhook("") == ""


# --- duplicates -------------------------------------------------------------------------


def cached_runtime(**settings):
    rt = runtime(**settings)
    rt.cache = ResultCache(rt.store.client, ttl_s=600, max_entries=100)
    return rt


def pinned_job(rt, blobs, chunk_size=8) -> str:
    job = rt.store.create(
        mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size, model_name="resnet50_sports", model_version="1"
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


# --- webhooks ----------------------------------------------------------------------------


def ended_job(jobs, **options):
    job = jobs.submit_upload(JobOptions(name="finals", **options), ANONYMOUS, [])
    assert jobs.store.get(job.id).state is JobState.COMPLETED  # empty: done at once
    return jobs.store.get(job.id)


def test_the_payload_carries_the_documented_keys():
    jobs = service()
    job = ended_job(jobs, webhook="http://127.0.0.1:1/hook")
    body = json.loads(payload(job))
    assert set(body) == {"job_id", "name", "state", "total", "succeeded", "failed", "cached", "finished_at"}
    assert (body["job_id"], body["name"], body["state"]) == (job.id, "finals", "completed")
    expected = "sha256=" + hmac.new(b"s3cret", payload(job), hashlib.sha256).hexdigest()
    assert signature("s3cret", payload(job)) == expected


def test_a_webhook_is_retried_until_it_is_answered_and_taken_off_the_queue(monkeypatch):
    monkeypatch.setattr("gateway.webhooks._FIRST_DELAY_S", 0.01)  # the receiver answers on the third try
    jobs = service()
    job = ended_job(jobs, webhook="http://127.0.0.1:1/hook")
    sent, outcomes_seen = [], []

    def flaky(url, body, secret, timeout_s):
        sent.append((url, secret))
        if len(sent) < 3:
            raise OSError("connection refused")

    sender = WebhookSender(jobs.store, "s3cret", 1.0, retry_s=30, on_delivery=outcomes_seen.append, send=flaky)
    assert jobs.store.take_webhook(0.1) == job.id
    assert sender.deliver(job.id, threading.Event()) is True
    assert sent == [("http://127.0.0.1:1/hook", "s3cret")] * 3 and outcomes_seen == [True]
    assert jobs.store.requeue_webhooks() == 0  # off the sending list


def test_a_webhook_that_never_answers_is_given_up_without_touching_the_job():
    jobs = service()
    job = ended_job(jobs, webhook="http://127.0.0.1:1/hook")
    seen = []

    def down(*_):
        raise OSError("connection refused")

    sender = WebhookSender(jobs.store, "", 1.0, retry_s=0, on_delivery=seen.append, send=down)
    assert jobs.store.take_webhook(0.1) == job.id
    assert sender.deliver(job.id, threading.Event()) is False and seen == [False]
    assert jobs.store.get(job.id).state is JobState.COMPLETED


def test_a_job_record_carries_the_documented_keys():
    from gateway.convert import job_to_proto
    from podium.output import job_record

    jobs = service()
    job = jobs.submit_upload(JobOptions(name="finals", max_failed="3"), ANONYMOUS, files("a", "b"))
    record = job_record(job_to_proto(jobs.store.get(job.id)))
    assert {"id", "name", "state", "total", "succeeded", "failed", "cached", "created_at"} <= set(record)
    assert (record["id"], record["name"], record["state"], record["total"]) == (job.id, "finals", "running", 2)
    assert record["max_failed"] == "3" and record["finished_at"] is None and json.dumps(record)
