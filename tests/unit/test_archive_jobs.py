"""Archive features on fakes: the job list, failure limits, job options, webhooks, resumable
submits. Duplicates answered once: test_result_cache_jobs.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import pytest

from gateway.access import ANONYMOUS, Caller
from gateway.egress import EgressPolicy
from gateway.service import JobOptions
from gateway.webhook_sender import WebhookSender
from gateway.webhooks import checked_webhook, owner_signing_key, payload, signature, signed_headers
from podium.core.errors import InvalidArgument, NotFound, Unavailable
from podium.core.jobs import FailureLimit, ImageOutcome, JobState
from tests.support.gateway import files, service

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
    assert checked_webhook("", EgressPolicy()) == ""


# --- webhooks ----------------------------------------------------------------------------


def ended_job(jobs, **options):
    job = jobs.submit_upload(JobOptions(name="finals", **options), ANONYMOUS, [])
    assert jobs.store.get(job.id).state is JobState.COMPLETED  # empty: done at once
    return jobs.store.get(job.id)


def test_the_payload_carries_the_documented_keys():
    jobs = service()
    job = ended_job(jobs, webhook="http://hooks.example:1/hook")
    body = json.loads(payload(job))
    assert set(body) == {"job_id", "name", "state", "total", "succeeded", "failed", "cached", "finished_at"}
    assert (body["job_id"], body["name"], body["state"]) == (job.id, "finals", "completed")
    expected = "sha256=" + hmac.new(b"key", b"1796128438." + payload(job), hashlib.sha256).hexdigest()
    assert signature("key", 1796128438, payload(job)) == expected


def test_signatures_are_keyed_per_owner_and_carry_their_time():
    """A receiver checks with its owner's key: another tenant's signed payload does not verify."""
    body = b'{"job_id":"x"}'
    key_a, key_b = owner_signing_key("s3cret", "owner-a"), owner_signing_key("s3cret", "owner-b")
    assert key_a != key_b and key_a != owner_signing_key("other-secret", "owner-a")
    headers = signed_headers(key_a, body, now=1796128438)
    assert headers["X-Podium-Timestamp"] == "1796128438"
    expected_a = "sha256=" + hmac.new(key_a.encode(), b"1796128438." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Podium-Signature"], expected_a)
    forged_for_b = "sha256=" + hmac.new(key_b.encode(), b"1796128438." + body, hashlib.sha256).hexdigest()
    assert headers["X-Podium-Signature"] != forged_for_b
    assert "X-Podium-Signature" not in signed_headers("", body)  # no secret: unsigned


def test_a_webhook_is_retried_until_it_is_answered_and_taken_off_the_queue(monkeypatch):
    monkeypatch.setattr("gateway.webhook_sender._FIRST_DELAY_S", 0.01)  # the receiver answers on the third try
    jobs = service()
    job = ended_job(jobs, webhook="http://hooks.example:1/hook")
    sent, outcomes_seen = [], []

    def flaky(url, body, secret, timeout_s):
        sent.append((url, secret))
        if len(sent) < 3:
            raise OSError("connection refused")

    sender = WebhookSender(jobs.store, "s3cret", 1.0, retry_s=30, on_delivery=outcomes_seen.append, send=flaky)
    assert jobs.store.take_webhook(0.1) == job.id
    assert sender.deliver(job.id, threading.Event()) is True
    key = owner_signing_key("s3cret", job.owner)  # the job owner's key, not the gateway's secret
    assert sent == [("http://hooks.example:1/hook", key)] * 3 and outcomes_seen == [True]
    assert jobs.store.requeue_webhooks() == 0  # off the sending list


def test_a_webhook_that_never_answers_is_given_up_without_touching_the_job():
    jobs = service()
    job = ended_job(jobs, webhook="http://hooks.example:1/hook")
    seen = []

    def down(*_):
        raise OSError("connection refused")

    sender = WebhookSender(jobs.store, "", 1.0, retry_s=0, on_delivery=seen.append, send=down)
    assert jobs.store.take_webhook(0.1) == job.id
    assert sender.deliver(job.id, threading.Event()) is False and seen == [False]
    assert jobs.store.get(job.id).state is JobState.COMPLETED


def test_a_job_record_carries_the_documented_keys():
    from gateway.convert import job_to_proto
    from podium.client.output import job_record

    jobs = service()
    job = jobs.submit_upload(JobOptions(name="finals", max_failed="3"), ANONYMOUS, files("a", "b"))
    record = job_record(job_to_proto(jobs.store.get(job.id)))
    assert {"id", "name", "state", "total", "succeeded", "failed", "cached", "created_at"} <= set(record)
    assert (record["id"], record["name"], record["state"], record["total"]) == (job.id, "finals", "running", 2)
    assert record["max_failed"] == "3" and record["finished_at"] is None and json.dumps(record)


# --- resumable submits (job keys) ---------------------------------------------------------


def broken_after(chunks, count):
    """The chunks of an upload whose client dies after ``count`` files."""
    for i, chunk in enumerate(chunks):
        if i == count:
            raise ConnectionError("the client went away")
        yield chunk


def test_a_keyed_upload_that_breaks_resumes_with_the_files_it_lacks():
    jobs = service()
    names = [f"img{i}.png" for i in range(6)]
    keyed = JobOptions(name="resumable", job_key="season-2024")
    with pytest.raises(ConnectionError):
        jobs.submit_upload(keyed, ANONYMOUS, broken_after(files(*names), 4))
    first = jobs.find("season-2024", ANONYMOUS)
    assert first.state is JobState.UPLOADING and first.total == 4  # not failed: resumable
    held = list(jobs.files(first.id, ANONYMOUS))
    assert held == names[:4]
    # The client sends everything again (its view was stale): held files are skipped.
    resumed = jobs.submit_upload(keyed, ANONYMOUS, files(*names))
    assert resumed.id == first.id and resumed.state is JobState.RUNNING
    assert list(jobs.files(first.id, ANONYMOUS)) == names and resumed.total == 6
    again = jobs.submit_upload(keyed, ANONYMOUS, files(*names))  # finished upload: the same job
    assert again.id == first.id and again.total == 6
    assert [job.id for job in jobs.list(ANONYMOUS).jobs] == [first.id]


def test_a_job_key_belongs_to_its_api_key_and_leaves_with_its_job():
    jobs = service()
    alice, bob = Caller("alice"), Caller("bob")
    a = jobs.submit_upload(JobOptions(job_key="k"), alice, files("a"))
    b = jobs.submit_upload(JobOptions(job_key="k"), bob, files("a"))
    assert a.id != b.id and jobs.find("k", alice).id == a.id
    jobs.delete(a.id, alice)
    with pytest.raises(NotFound):
        jobs.find("k", alice)
    fresh = jobs.submit_upload(JobOptions(job_key="k"), alice, files("a"))
    assert fresh.id not in (a.id, b.id)


def test_a_second_uploader_with_the_same_key_is_refused_while_one_streams():
    jobs = service()
    keyed = JobOptions(job_key="k")
    with pytest.raises(ConnectionError):
        jobs.submit_upload(keyed, ANONYMOUS, broken_after(files("a", "b"), 1))
    job = jobs.find("k", ANONYMOUS)
    assert jobs.store.claim(f"upload:{job.id}", 30)  # as if another gateway thread streamed it
    with pytest.raises(Unavailable, match="being uploaded"):
        jobs.submit_upload(keyed, ANONYMOUS, files("a", "b"))


def test_job_keys_are_for_uploads_only(tmp_path):
    jobs = service(data_roots=str(tmp_path))
    with pytest.raises(InvalidArgument, match="job key"):
        jobs.submit_path(str(tmp_path), JobOptions(job_key="k"), ANONYMOUS)


def test_a_job_its_max_failed_stops_during_the_upload_is_the_answer_not_an_error():
    jobs = service(max_pending_uploads=1)  # the upload waits for workers: the job fails first
    chunks = files(*[f"bad{i}.jpg" for i in range(70)], data=b"not an image")

    def with_failures():
        for i, chunk in enumerate(chunks):
            if i == 40:  # 40 files in: a worker has failed three of them
                job = jobs.list(ANONYMOUS).jobs[0]
                for index in range(3):
                    jobs.store.record(job.id, index, ImageOutcome(error="not an image"))
            yield chunk

    job = jobs.submit_upload(JobOptions(max_failed="2"), ANONYMOUS, with_failures())
    assert job.state is JobState.FAILED and "max_failed 2" in job.error


def test_a_command_that_chooses_its_exit_code_is_not_an_internal_error():
    import io

    import typer
    from rich.console import Console

    from podium.cli.failures import handled

    out = io.StringIO()
    with pytest.raises(typer.Exit) as stopped, handled(Console(file=out)):
        raise typer.Exit(3)
    assert stopped.value.exit_code == 3 and "internal error" not in out.getvalue()


def test_files_a_stopped_upload_never_sent_still_get_their_line(tmp_path):
    from podium.client.output import with_unsent
    from podium.core.proto import podium_pb2 as pb

    for name in ("a.jpg", "b.jpg", "c.jpg", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    job = pb.Job(id="j", state=pb.JOB_STATE_FAILED, error="3 images failed")
    sent = [{"path": "a.jpg", "status": "error", "top_k": [], "error": "not an image"}]
    lines = list(with_unsent(sent, tmp_path, job))
    assert [line["path"] for line in lines] == ["a.jpg", "b.jpg", "c.jpg"]
    assert "not uploaded" in lines[1]["error"] and "3 images failed" in lines[2]["error"]


@pytest.mark.parametrize("token", ["nan", "inf", "-inf", "1_0", "0x10", " 1", "1e999999", "9" * 5000])
def test_page_tokens_not_issued_by_the_gateway_are_invalid_arguments(token):
    with pytest.raises(InvalidArgument, match="page_token"):
        service().list(ANONYMOUS, 10, token)


@pytest.mark.parametrize("text", ["9" * 4400, "1" * 16, "9" * 4400 + "%", "1." + "5" * 30 + "%"])
def test_failure_limits_with_absurd_digits_are_invalid_arguments(text):
    with pytest.raises(InvalidArgument, match="max_failed"):
        FailureLimit.parse(text)


def test_a_webhooks_tokens_never_come_back_from_the_api():
    from gateway.convert import job_to_proto

    jobs = service()
    job = ended_job(jobs, webhook="https://user:pass@hooks.example:8443/podium?token=s3cret#frag")
    assert jobs.store.get(job.id).webhook.endswith("token=s3cret#frag")  # kept whole for delivery
    shown = job_to_proto(jobs.store.get(job.id)).spec.webhook
    assert shown == "https://hooks.example:8443/podium?…"
    assert "s3cret" not in shown and "pass" not in shown
