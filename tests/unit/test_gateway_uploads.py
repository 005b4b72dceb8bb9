"""Uploads on fakes: files streamed in chunks become a job, a broken or oversized file fails
alone, and an upload waits, keeps its lease and sends what arrived while its own limits or
Redis's memory hold it back."""

from __future__ import annotations

import time

import pytest

from gateway.settings import GatewaySettings
from gateway.uploads import FileChunk, UploadAssembler
from podium.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable
from podium.core.jobs import JobMode, JobState
from podium.stores.jobstore import HeldBack
from tests.support.fakes import fake_store
from tests.support.gateway import OK, files, service, upload


def test_an_upload_becomes_a_running_job_with_its_chunks_queued():
    jobs = service()
    job = upload(jobs, files("a.jpg", "b.jpg", "c/d.jpg", "e.jpg", "f.jpg"), top_k=3, name="finals")
    assert (job.state, job.total, job.top_k, job.name, job.mode) == (JobState.RUNNING, 5, 3, "finals", JobMode.UPLOAD)
    assert jobs.queue.sent == [(job.id, 0), (job.id, 1)]  # bounded: 2 of the 3 chunks
    assert jobs.store.files(job.id, 0, 5) == ["a.jpg", "b.jpg", "c/d.jpg", "e.jpg", "f.jpg"]
    assert jobs.store.blob(job.id, 2) == b"bytes"


def test_a_file_in_several_chunks_is_joined():
    jobs = service()
    chunks = [FileChunk("a.jpg", b"ab", False), FileChunk("a.jpg", b"cd", False), FileChunk("a.jpg", b"", True)]
    job = upload(jobs, chunks)
    assert jobs.store.blob(job.id, 0) == b"abcd"
    assert job.top_k == 5  # the gateway's default


@pytest.mark.parametrize(
    ("chunks", "error", "message"),
    [
        (files("a.jpg", "a.jpg"), InvalidArgument, "sent twice"),
        (files("../up.jpg"), InvalidArgument, "stay inside the folder"),
        ([FileChunk("a.jpg", b"x", False), FileChunk("b.jpg", b"y", True)], InvalidArgument, "was not finished"),
        ([FileChunk("a.jpg", b"x", False)], InvalidArgument, "ended inside file"),
        (files("a", "b", "c", "d"), ResourceExhausted, "at most 3 files"),
        (files("big", data=b"x" * 101), ResourceExhausted, "limit of 100 bytes per job"),
    ],
)
def test_a_broken_upload_fails_its_job_and_says_why(chunks, error, message):
    jobs = service(max_files_per_job=3, max_upload_bytes=100)
    with pytest.raises(error, match=message):
        upload(jobs, chunks)
    assert jobs.store.active_jobs() == 0  # the job ended (failed) with its upload


def test_oversized_and_unreadable_files_fail_alone():
    jobs = service(max_file_bytes=4)
    chunks = [
        FileChunk("big.jpg", b"12345", True),
        FileChunk("locked.jpg", b"", True, "Permission denied"),
        FileChunk("ok.jpg", b"1234", True),
    ]
    job = upload(jobs, chunks)
    results = {path: outcome for path, outcome in jobs.store.results(job.id, 0, 3)}
    assert "larger than the limit of 4 bytes" in results["big.jpg"].error
    assert "could not read this file: Permission denied" in results["locked.jpg"].error
    assert results["ok.jpg"] is None and jobs.store.blob(job.id, 2) == b"1234"


def test_the_assembler_waits_while_the_job_holds_too_many_unprocessed_images():
    store = fake_store()
    settings = GatewaySettings(max_pending_uploads=2)
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    assembler = UploadAssembler(store, job.id, settings, lambda job_id, partial: None)
    for name in ("a", "b"):
        assembler.add_chunk(FileChunk(name, b"x", True))
    assembler.flush()
    assert store.pending_uploads(job.id) == (2, 2)
    store.cancel(job.id)  # nobody will ever process them: the wait must end, with a reason
    assembler.add_chunk(FileChunk("c", b"x", True))
    with pytest.raises(FailedPrecondition, match="ended during its upload"):
        assembler.flush()


def test_an_upload_waits_while_the_job_holds_too_many_bytes():
    store = fake_store()
    settings = GatewaySettings(max_pending_upload_bytes=1024**2)
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    assembler = UploadAssembler(store, job.id, settings, lambda job_id, partial: None)
    assembler.add_chunk(FileChunk("big", b"x" * 1024**2, True))
    assembler.flush()
    assert store.pending_uploads(job.id) == (1, 1024**2)
    store.record(job.id, 0, OK)  # a worker finished it: its bytes leave Redis
    assert store.pending_uploads(job.id) == (0, 0)
    store.cancel(job.id)
    assembler.add_chunk(FileChunk("late", b"x", True))
    with pytest.raises(FailedPrecondition, match="ended during its upload"):
        assembler.flush()
    assert store.job_keys(job.id) and all(store._redis.ttl(key) > 0 for key in store.job_keys(job.id))


def test_a_paused_upload_is_kept_alive_and_stops_only_after_the_setting():
    """Backpressure (the workers are not taking files, e.g. Triton is down) is no idleness: the
    upload's idle watch and lease are kept alive while it waits, up to upload_backpressure_max_s."""

    store = fake_store()
    settings = GatewaySettings(max_pending_uploads=1, upload_backpressure_max_s=0.5)
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    waits = []
    assembler = UploadAssembler(store, job.id, settings, lambda job_id, partial: None, on_wait=lambda: waits.append(1))
    assembler.add_chunk(FileChunk("first", b"x", True))
    assembler.flush()  # one file waits for a worker: the job is full
    assembler.add_chunk(FileChunk("second", b"y", True))
    started = time.monotonic()
    with pytest.raises(Unavailable, match="have not taken this job's files") as stopped:
        assembler.flush()
    assert 0.5 <= time.monotonic() - started < 2.0 and len(waits) >= 5
    assert "--job-key" in stopped.value.hint


def test_an_upload_waits_while_redis_is_above_its_high_water_mark_and_asks_it_sparingly(monkeypatch):
    """Files are not written while Redis is near full; its memory is asked about at most every
    _MEMORY_CHECK_S (or FLUSH_BYTES) per upload, not at every 32-file flush and 50-ms poll."""
    store = fake_store()
    settings = GatewaySettings(redis_high_water=0.8, upload_backpressure_max_s=5)
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1000)
    asked, full_until = [], time.monotonic() + 0.5

    def used() -> float:
        asked.append(1)
        return 0.9 if time.monotonic() < full_until else 0.5

    monkeypatch.setattr(store, "memory_used_fraction", used)
    pumped = []
    assembler = UploadAssembler(store, job.id, settings, lambda job_id, partial: pumped.append(partial))
    for i in range(320):  # ten flushes
        assembler.add_chunk(FileChunk(f"{i}.jpg", b"x", True))
    assembler.finish()
    assert time.monotonic() >= full_until  # held until Redis had room
    assert {held for held in pumped if held} == {HeldBack.BY_REDIS_MEMORY}  # not by its own limits
    assert store.get(job.id).total == 320
    assert len(asked) <= 8  # ~3 while held (every 0.2 s), 1-2 for the ten flushes after (20 if asked each time)


def test_an_upload_held_back_by_its_limit_sends_what_arrived_and_goes_on():
    """A chunk larger than the unprocessed files an upload may hold would never fill: held
    back, the upload sends the files that arrived as a smaller chunk, and goes on once they
    are processed, in chunks of a quarter of that room."""
    jobs = service(chunk_size=16, max_pending_uploads=8, upload_backpressure_max_s=5)
    job = jobs.store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=16)
    processed = 0

    def pump_and_process(job_id: str, partial: HeldBack) -> None:  # a worker that is never behind
        nonlocal processed
        assert partial in (HeldBack.NO, HeldBack.BY_ITS_LIMITS)
        jobs.queue.pump(job_id, partial)
        for _, chunk in jobs.queue.sent[processed:]:
            first, size = jobs.store.chunk_layout(job_id).span(chunk)
            for index in range(first, min(first + size, jobs.store.get(job_id).total)):
                jobs.store.record(job_id, index, OK)
            jobs.store.complete_chunk(job_id, chunk)
            processed += 1

    assembler = UploadAssembler(jobs.store, job.id, jobs.settings, pump_and_process)
    for i in range(20):
        assembler.add_chunk(FileChunk(f"{i}.jpg", b"x", True))
        assembler.flush()
    assembler.finish()
    jobs.store.finish_upload(job.id)
    pump_and_process(job.id, False)
    layout = jobs.store.chunk_layout(job.id)
    assert [layout.span(c) for c in range(layout.count(20))] == [(0, 8)] + [(i, 2) for i in range(8, 20, 2)]
    assert jobs.store.get(job.id).state is JobState.COMPLETED


def test_an_uploads_lease_is_renewed_at_most_once_a_second_as_files_arrive(monkeypatch):
    jobs = service(chunk_size=100)
    renewals = []
    real = jobs.store.renew_claim
    monkeypatch.setattr(jobs.store, "renew_claim", lambda *a: renewals.append(a) or real(*a))
    upload(jobs, files(*(f"{i}.jpg" for i in range(50))))
    assert 1 <= len(renewals) <= 2  # 50 files in well under two seconds
