"""JobService and UploadAssembler on fakes: the store on fakeredis, a recording queue, a fake Triton."""

from __future__ import annotations

import json
import os
import time

import pyarrow.compute as pc
import pytest

from gateway.access import ANONYMOUS, Caller
from gateway.compaction import GRACE_S, Compactions
from gateway.convert import result_to_proto
from gateway.job_reading import CANCELLED_ERROR
from gateway.model_service import ModelService
from gateway.service import JobOptions, JobService
from gateway.settings import GatewaySettings
from gateway.uploads import FileChunk, UploadAssembler
from podium.client.bulk import batch_lines, batch_records
from podium.client.output import result_record
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from podium.core.jobs import ActivationMap, ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore import HeldBack, Stamp
from podium.stores.resultsink import COMPACTED, ResultRow, compact, ipc_batches, job_table, open_sink, write_part
from podium.stores.resultsink.rows import parquet_bytes
from tests.support.fakes import CLASSES, FakeClassifier, FakeClassifiers, FakeQueue, fake_store, png_bytes

OK = ImageOutcome(predictions=(Prediction("archery", 0, 0.9),))


def service(**settings) -> JobService:
    store = fake_store()
    gateway_settings = GatewaySettings(**({"chunk_size": 2, "max_queued_chunks": 2} | settings))
    models = ModelService(gateway_settings, FakeClassifiers().get)
    return JobService(gateway_settings, store, FakeQueue(store), models)


def upload(jobs: JobService, chunks, top_k: int = 0, name: str = "", caller: Caller = ANONYMOUS):
    return jobs.submit_upload(JobOptions(top_k, name), caller, chunks)


def files(*names: str, data: bytes = b"bytes") -> list[FileChunk]:
    return [FileChunk(name, data, True) for name in names]


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


def test_too_many_active_jobs_are_refused():
    jobs = service(max_active_jobs=1)
    jobs.store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    with pytest.raises(ResourceExhausted, match="already runs 1 jobs"):
        upload(jobs, files("a"))


@pytest.mark.parametrize(("top_k", "name"), [(1001, ""), (-1, ""), (5, "x" * 201)])
def test_bad_options_are_invalid_arguments(top_k, name):
    with pytest.raises(InvalidArgument):
        upload(service(), files("a"), top_k, name)


def test_path_mode_lists_the_folder_under_a_data_root(tmp_path):
    (tmp_path / "finals" / "day1").mkdir(parents=True)
    for name in ("finals/b.jpg", "finals/a.jpg", "finals/day1/c.jpg", "finals/.hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    jobs = service(data_roots=str(tmp_path))
    job = jobs.submit_path("finals", JobOptions(2), ANONYMOUS)
    assert (job.mode, job.total, job.root) == (JobMode.PATH, 3, str(tmp_path / "finals"))
    assert jobs.store.files(job.id, 0, 3) == ["a.jpg", "b.jpg", "day1/c.jpg"]
    with pytest.raises(InvalidArgument, match="outside the data roots"):
        jobs.submit_path("/etc", JobOptions(2), ANONYMOUS)
    with pytest.raises(FailedPrecondition, match="path mode is off"):
        service().submit_path(str(tmp_path), JobOptions(2), ANONYMOUS)


def test_results_of_a_cancelled_job_give_every_image_one_line():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 1, OK)
    jobs.cancel(job.id, ANONYMOUS)
    results = list(jobs.results(job.id, ANONYMOUS, 0, follow=True, is_active=lambda: True))
    assert [(r.index, r.path) for r in results] == [(0, "a"), (1, "b"), (2, "c")]
    assert results[1].outcome == OK
    assert results[0].outcome.error == results[2].outcome.error == CANCELLED_ERROR


def test_results_without_follow_skip_unfinished_images():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 2, OK)
    assert [r.index for r in jobs.results(job.id, ANONYMOUS, 0, follow=False, is_active=lambda: True)] == [2]
    assert [r.index for r in jobs.results(job.id, ANONYMOUS, 3, follow=False, is_active=lambda: True)] == []
    with pytest.raises(InvalidArgument):
        list(jobs.results(job.id, ANONYMOUS, -1, follow=False, is_active=lambda: True))


def test_watch_ends_with_the_first_terminal_state():
    jobs = service()
    job = upload(jobs, files("a", "b"))
    for index in range(2):
        jobs.store.record(job.id, index, OK)
    seen = list(jobs.watch(job.id, ANONYMOUS, is_active=lambda: True))
    assert seen[-1].state is JobState.COMPLETED and seen[-1].succeeded == 2


def test_unknown_jobs_are_not_found():
    jobs = service()
    for call in (
        lambda: jobs.get("0" * 32, ANONYMOUS),
        lambda: jobs.cancel("0" * 32, ANONYMOUS),
        lambda: jobs.delete("0" * 32, ANONYMOUS),
        lambda: list(jobs.watch("0" * 32, ANONYMOUS, lambda: True)),
        lambda: list(jobs.results("0" * 32, ANONYMOUS, 0, False, lambda: True)),
    ):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("job_id", ["", "nope", "0" * 31, "G" * 32, "0" * 32 + ":results", "../" * 20])
def test_malformed_job_ids_are_invalid_arguments(job_id):
    with pytest.raises(InvalidArgument, match="is not a job id"):
        service().get(job_id, ANONYMOUS)


def test_a_job_belongs_to_the_key_that_created_it():
    jobs = service()
    alice, bob, admin = Caller("alice"), Caller("bob"), Caller("root", admin=True)
    job = upload(jobs, files("a"), caller=alice)
    assert jobs.get(job.id, alice).owner == "alice" and jobs.get(job.id, admin).id == job.id
    for action in (jobs.get, jobs.cancel, jobs.delete):
        with pytest.raises(NotFound):
            action(job.id, bob)
    jobs.delete(job.id, alice)
    assert jobs.store.job_keys(job.id) == []


def test_delete_leaves_no_key_of_the_job():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 0, OK)
    assert jobs.store.acquire_chunk(job.id, 0, "w", 60).taken  # a lease, as a running worker has
    jobs.delete(job.id, ANONYMOUS)
    assert jobs.store.job_keys(job.id) == []
    assert jobs.store.active_jobs() == 0
    with pytest.raises(NotFound):
        jobs.get(job.id, ANONYMOUS)


def test_new_jobs_are_refused_above_the_redis_high_water_mark(monkeypatch):
    jobs = service(redis_high_water=0.8)
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: 0.85)
    with pytest.raises(ResourceExhausted, match="85% full"):
        upload(jobs, files("a"))
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: 0.5)
    assert upload(jobs, files("a")).total == 1


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


def test_paths_are_limited_and_counted():
    with pytest.raises(InvalidArgument, match="longer than 4096 bytes"):
        upload(service(), files("a" * 4097))
    with pytest.raises(ResourceExhausted, match="limit of 100 bytes"):
        upload(service(max_upload_bytes=100), files("p" * 98, data=b"xyz"))


def test_unreadable_and_linked_folders_get_error_lines(tmp_path, monkeypatch):
    (tmp_path / "job" / "locked").mkdir(parents=True)
    (tmp_path / "job" / "a.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "job" / "link").symlink_to(tmp_path / "elsewhere")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    jobs = service(data_roots=str(tmp_path))
    job = jobs.submit_path("job", JobOptions(), ANONYMOUS)
    results = dict(jobs.store.results(job.id, 0, 10))
    assert results["a.jpg"] is None
    assert results["link"].error == "symbolic link to a folder; not followed"
    assert results["locked"].error == "folder cannot be read: Permission denied"


def test_a_job_pins_its_model_version_and_an_unknown_model_is_not_found():
    jobs = service()
    job = upload(jobs, files("a"))
    assert (job.model_name, job.model_version) == ("resnet50_sports", "1")
    pinned = jobs.submit_upload(JobOptions(model="resnet50_sports:1"), ANONYMOUS, files("a"))
    assert pinned.model_version == "1"
    for unknown in ("nope", "resnet50_sports:7"):
        with pytest.raises(NotFound, match="is not served"):
            jobs.submit_upload(JobOptions(model=unknown), ANONYMOUS, files("a"))
    with pytest.raises(InvalidArgument, match="NAME or NAME:VERSION"):
        jobs.submit_upload(JobOptions(model="../x"), ANONYMOUS, files("a"))
    assert jobs.store.active_jobs() == 2  # refused before a job was made


def test_classify_answers_from_the_model_and_refuses_bad_requests():
    fake = FakeClassifier()
    model = ModelService(GatewaySettings(classify_max_images=2), lambda ref: fake)
    outcomes = model.classify([("dark.png", png_bytes(10)), ("junk", b"not an image")], top_k=2)
    assert outcomes[0].predictions[0].label == CLASSES[0] and len(outcomes[0].predictions) == 2
    assert "not a recognised image format" in outcomes[1].error
    with pytest.raises(InvalidArgument, match="at most 2 images"):
        model.classify([("a", b"")] * 3, top_k=1)
    with pytest.raises(InvalidArgument, match="at least one image"):
        model.classify([], top_k=1)
    fake.down = True
    with pytest.raises(Unavailable, match="connection refused"):
        model.classify([("a", png_bytes(10))], top_k=1)


def test_job_options_are_fields_of_the_api_job_spec():
    import dataclasses

    from podium.core.proto import podium_pb2 as pb

    spec_fields = {field.name for field in pb.JobSpec.DESCRIPTOR.fields}
    assert {option.name for option in dataclasses.fields(JobOptions)} <= spec_fields


def test_a_long_listing_stops_when_redis_fills_up(monkeypatch):
    """Room is checked at every batch of paths appended, not only when the job is created."""
    from podium.core.jobs import JobState

    jobs = service(redis_high_water=0.8)
    readings = iter([0.5, 0.5, 0.85])  # at creation, after the first batch, then full
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: next(readings, 0.85))
    lines = (f"s3://none/{i}.jpg" for i in range(5000))
    with pytest.raises(ResourceExhausted, match="85% full"):
        jobs.submit_manifest(lines, JobOptions(), ANONYMOUS)
    (job,) = jobs.store.list_jobs(10, "", lambda job: True).jobs
    assert job.state is JobState.FAILED and "full" in job.error
    assert job.total <= 1000  # stopped after the first batch


def test_a_manifest_line_too_long_is_stored_cut(monkeypatch):
    from gateway.uploads import MAX_PATH_BYTES

    jobs = service()
    job = jobs.submit_manifest(["x" * 1024**2, "ok.jpg"], JobOptions(), ANONYMOUS)
    stored = jobs.store.files(job.id, 0, 2)
    assert len(stored[0].encode()) <= MAX_PATH_BYTES + 3 and stored[0].endswith("…") and stored[1] == "ok.jpg"
    assert "longer than" in jobs.store.results(job.id, 0, 1)[0][1].error


def test_one_owner_cannot_queue_more_than_its_share():
    from gateway.access import Caller

    jobs = service(max_queued_images_per_owner=5, chunk_size=100)  # nothing is worked on: all 5 wait
    owner_a, owner_b = Caller("owner-a"), Caller("owner-b")
    jobs.submit_upload(JobOptions(), owner_a, files(*[f"{i}.jpg" for i in range(5)]))
    with pytest.raises(ResourceExhausted, match="5 images waiting"):
        jobs.submit_upload(JobOptions(), owner_a, files("more.jpg"))
    assert jobs.submit_upload(JobOptions(), owner_b, files("b.jpg")).total == 1  # another owner is not held up
    with pytest.raises(ResourceExhausted, match="at most 5 may wait"):
        jobs.submit_manifest([f"s3://none/{i}.jpg" for i in range(10)], JobOptions(), owner_b)


def test_a_paused_upload_is_kept_alive_and_stops_only_after_the_setting():
    """Backpressure (the workers are not taking files, e.g. Triton is down) is no idleness: the
    upload's idle watch and lease are kept alive while it waits, up to upload_backpressure_max_s."""
    from podium.core.errors import Unavailable

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


def test_a_new_jobs_chunks_are_sized_by_the_workers_rate(tmp_path):
    from podium.stores.jobstore.chunk_rates import ChunkRates

    (tmp_path / "a.jpg").write_bytes(png_bytes(20))
    jobs = service(chunk_size=4, max_chunk_size=64, data_roots=str(tmp_path))

    def path_job(name: str = ""):
        return jobs.submit_path(str(tmp_path), JobOptions(0, name), ANONYMOUS)

    def first_chunk_size(job) -> int:
        return jobs.store.chunk_layout(job.id).span(0)[1]

    assert first_chunk_size(path_job()) == 4  # nothing measured yet
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 40, 1.0)  # 40 images a second
    assert first_chunk_size(path_job()) == 32
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 4000, 1.0)
    assert first_chunk_size(path_job()) == 64
    assert first_chunk_size(upload(jobs, files("b.jpg"))) == 64
    # An upload's chunks take at most a quarter of the unprocessed files it may hold.
    held = service(chunk_size=4, max_chunk_size=64, max_pending_uploads=32)
    ChunkRates(held.store.client).note(held.settings.model_name, 4000, 1.0)
    assert held.store.chunk_layout(upload(held, files("b.jpg")).id).span(0)[1] == 8
    fixed = service(chunk_size=4, chunk_seconds=0, data_roots=str(tmp_path))
    ChunkRates(fixed.store.client).note(fixed.settings.model_name, 4000, 1.0)
    assert fixed.store.chunk_layout(fixed.submit_path(str(tmp_path), JobOptions(0, ""), ANONYMOUS).id).span(0)[1] == 4


def test_a_path_jobs_chunks_grow_once_the_workers_measure_a_rate(tmp_path):
    """A fresh cluster's first big job: its first chunks are the fewest images, the later
    ones sized by the rate the first ones measured."""
    from podium.stores.jobstore.chunk_rates import ChunkRates

    for i in range(40):
        (tmp_path / f"{i:02d}.jpg").write_bytes(png_bytes(20))
    jobs = service(chunk_size=4, max_chunk_size=16, max_queued_chunks=2, data_roots=str(tmp_path))
    job = jobs.submit_path(str(tmp_path), JobOptions(0, ""), ANONYMOUS)
    assert jobs.store.dispatched_chunks(job.id) == 2  # 0 and 1, of 4 images each
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 12, 1.0)  # chunk 0 took a second
    jobs.store.complete_chunk(job.id, 0)
    assert jobs.store.dispatch(job.id, 2) == [2]
    assert [jobs.store.chunk_layout(job.id).span(c) for c in range(5)] == [(0, 4), (4, 4), (8, 8), (16, 8), (24, 8)]


def test_an_uploads_lease_is_renewed_at_most_once_a_second_as_files_arrive(monkeypatch):
    jobs = service(chunk_size=100)
    renewals = []
    real = jobs.store.renew_claim
    monkeypatch.setattr(jobs.store, "renew_claim", lambda *a: renewals.append(a) or real(*a))
    upload(jobs, files(*(f"{i}.jpg" for i in range(50))))
    assert 1 <= len(renewals) <= 2  # 50 files in well under two seconds


def sink_service(tmp_path) -> JobService:
    return service(results_url=f"file://{tmp_path}")


def commit(jobs: JobService, job_id: str, chunk: int) -> bool:
    """What a worker does once a chunk's answers are recorded: its file, then its done mark."""
    start, size = jobs.store.chunk_layout(job_id).span(chunk)
    recorded = jobs.store.recorded(job_id, start, size)
    rows = [ResultRow(start + i, path, record) for i, (path, record) in enumerate(recorded) if record]
    write_part(open_sink(jobs.settings.results_url), job_id, start, rows, "resnet50:1")
    return jobs.store.complete_chunk(job_id, chunk)


def streamed(jobs: JobService, job_id: str, start: int = 0, follow: bool = False) -> list:
    return list(jobs.results(job_id, ANONYMOUS, start, follow=follow, is_active=lambda: True))


def test_results_of_a_job_with_a_sink_come_from_redis_and_its_files_alike(tmp_path):
    jobs = sink_service(tmp_path)
    job = upload(jobs, files("a", "b", "c", "d", "e"))
    answers = [ImageOutcome(predictions=(Prediction(f"class {i}", i, 0.5 + i / 10),)) for i in range(5)]
    for index in range(3):
        jobs.store.record(job.id, index, answers[index], stamp=Stamp(f"{index:064x}"))
    commit(jobs, job.id, 0)  # 0 and 1 leave Redis for a file; 2 is in Redis; 3 and 4 unanswered
    first = streamed(jobs, job.id)
    assert [(r.index, r.path, r.outcome) for r in first] == [(i, "abc"[i], answers[i]) for i in range(3)]
    assert first[1].sha256 == f"{1:064x}" and abs(first[1].finished_at - time.time()) < 60
    for index in (3, 4):
        jobs.store.record(job.id, index, answers[index], stamp=Stamp())
    assert commit(jobs, job.id, 2) is False
    assert commit(jobs, job.id, 1) is True  # the last file: the job completed, Redis keeps its record
    assert jobs.store.job_keys(job.id) == [f"podium:job:{job.id}"]
    every = streamed(jobs, job.id)  # from the parts, then the same after compaction
    assert [(r.index, r.path, r.outcome) for r in every] == [(i, "abcde"[i], answers[i]) for i in range(5)]
    compact(open_sink(jobs.settings.results_url), job.id)
    assert streamed(jobs, job.id, follow=True) == every
    assert [r.index for r in streamed(jobs, job.id, start=3)] == [3, 4]


def test_results_of_a_job_with_a_sink_follow_chunks_that_grew_after_reading_began(tmp_path):
    from gateway.result_pages import ResultPages
    from podium.stores.jobstore.chunk_rates import ChunkRates

    for i in range(20):
        (tmp_path / "data" / f"{i:02d}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "data" / f"{i:02d}.jpg").write_bytes(b"x")
    jobs = service(
        chunk_size=2, max_chunk_size=8, data_roots=str(tmp_path / "data"),
        results_url=f"file://{tmp_path / 'results'}",
    )  # fmt: skip
    job = jobs.submit_path(str(tmp_path / "data"), JobOptions(0, ""), ANONYMOUS)
    pages = ResultPages(jobs.store, jobs.store.get(job.id))  # a reader that saw chunks of 2
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 8, 1.0)
    for chunk in (0, 1, 2):  # chunks 0 and 1 went out with 2 images; 2 grew to 8, 4-11, and its file landed
        first, size = jobs.store.chunk_layout(job.id).span(chunk)
        for index in range(first, first + size):
            jobs.store.record(job.id, index, OK, stamp=Stamp())
        commit(jobs, job.id, chunk)
        jobs.store.dispatch(job.id, 2)
    assert jobs.store.chunk_layout(job.id).span(2) == (4, 8)
    page = pages.page(jobs.store.get(job.id), 6)
    assert [(path.rsplit("/", 1)[-1], record and record.outcome) for path, record in page] == [
        (f"{i:02d}.jpg", OK) for i in range(6, 12)
    ]


def cancelled_after_one_chunk(jobs: JobService):
    """A four-image job cancelled once chunk 0 landed as a file and image 2 was recorded in Redis."""
    job = upload(jobs, files("a", "b", "c", "d"))
    for index in range(3):
        jobs.store.record(job.id, index, OK, stamp=Stamp())
    commit(jobs, job.id, 0)
    jobs.cancel(job.id, ANONYMOUS)
    return job


def test_results_of_a_cancelled_job_with_a_sink_give_every_image_one_line(tmp_path):
    jobs = sink_service(tmp_path)
    job = cancelled_after_one_chunk(jobs)
    results = streamed(jobs, job.id, follow=True)
    assert [(r.index, r.path) for r in results] == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    assert [r.outcome for r in results[:3]] == [OK] * 3
    assert results[3].outcome.error == CANCELLED_ERROR


def run_to_the_end(jobs: JobService, job_id: str, answer=lambda path: OK) -> None:
    """What workers do with every chunk of the job: answer each image, then commit the chunk."""
    job = jobs.store.get(job_id)
    for index, path in enumerate(jobs.store.files(job_id, 0, job.total)):
        jobs.store.record(job_id, index, answer(path), stamp=Stamp())
    for chunk in range(jobs.store.chunk_layout(job_id).count(job.total)):
        commit(jobs, job_id, chunk)


def archive(tmp_path, names) -> None:
    for name in names:
        (tmp_path / "archive" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "archive" / name).write_bytes(b"x")


def test_a_delta_job_classifies_what_changed_and_carries_the_rest_over(tmp_path):
    archive(tmp_path / "data", ["a.jpg", "b.jpg", "c.jpg", "d/e.jpg", "d/f.jpg"])
    jobs = service(data_roots=str(tmp_path / "data"), results_url=f"file://{tmp_path / 'results'}")
    nightly = JobOptions(2, incremental="nightly")
    first = jobs.submit_path("archive", nightly, ANONYMOUS)
    assert (first.total, first.unchanged, first.incremental) == (5, 0, "nightly")
    first_answer = ImageOutcome(predictions=(Prediction("first run", 1, 0.5),))
    run_to_the_end(jobs, first.id, lambda path: first_answer)
    archive(tmp_path / "data", ["b2.jpg", "d/g.jpg"])
    (tmp_path / "data" / "archive" / "c.jpg").write_bytes(b"changed")
    (tmp_path / "data" / "archive" / "d" / "e.jpg").unlink()
    second = jobs.submit_path("archive", nightly, ANONYMOUS)
    assert jobs.store.files(second.id, 0, 10) == ["b2.jpg", "c.jpg", "d/g.jpg"]  # new and changed only
    assert (second.total, second.unchanged) == (3, 3)
    run_to_the_end(jobs, second.id)
    rows = streamed(jobs, second.id)
    assert [r.index for r in rows] == list(range(6))  # deleted entries are simply absent
    answers = {r.path: r.outcome for r in rows}
    assert sorted(answers) == ["a.jpg", "b.jpg", "b2.jpg", "c.jpg", "d/f.jpg", "d/g.jpg"]
    assert [path for path, outcome in answers.items() if outcome == first_answer] == ["a.jpg", "b.jpg", "d/f.jpg"]
    # Nothing changed since: nothing to classify, the job completes at once with every row.
    third = jobs.submit_path("archive", nightly, ANONYMOUS)
    assert (third.state, third.total, third.unchanged) == (JobState.COMPLETED, 0, 6)
    assert [(r.path, r.outcome) for r in streamed(jobs, third.id)] == [(r.path, r.outcome) for r in rows]
    assert sorted(os.listdir(tmp_path / "results" / third.id)) == ["listing.arrow", "results.parquet"]


def test_a_cancelled_or_running_delta_job_streams_its_carried_rows_after_its_own(tmp_path):
    archive(tmp_path / "data", ["a.jpg", "b.jpg", "c.jpg"])
    jobs = service(data_roots=str(tmp_path / "data"), results_url=f"file://{tmp_path / 'results'}")
    nightly = JobOptions(2, incremental="nightly")
    first_answer = ImageOutcome(predictions=(Prediction("first run", 1, 0.5),))
    run_to_the_end(jobs, jobs.submit_path("archive", nightly, ANONYMOUS).id, lambda path: first_answer)
    archive(tmp_path / "data", ["d.jpg", "e.jpg", "f.jpg"])
    second = jobs.submit_path("archive", nightly, ANONYMOUS)
    assert (second.total, second.unchanged) == (3, 3)
    jobs.store.record(second.id, 0, OK, stamp=Stamp())  # d.jpg answered, e.jpg and f.jpg not yet
    running = streamed(jobs, second.id)  # unfinished images skipped, the carried rows there
    assert [(r.index, r.path) for r in running] == [(0, "d.jpg"), (3, "a.jpg"), (4, "b.jpg"), (5, "c.jpg")]
    assert [r.outcome for r in running[1:]] == [first_answer] * 3
    jobs.cancel(second.id, ANONYMOUS)
    for follow in (False, True):
        rows = streamed(jobs, second.id, follow=follow)
        assert [(r.index, r.path) for r in rows] == [
            (0, "d.jpg"),
            (1, "e.jpg"),
            (2, "f.jpg"),
            (3, "a.jpg"),
            (4, "b.jpg"),
            (5, "c.jpg"),
        ]
        assert [r.outcome.error for r in rows[1:3]] == [CANCELLED_ERROR] * 2
        assert [r.outcome for r in rows[3:]] == [first_answer] * 3
    assert [r.index for r in streamed(jobs, second.id, start=4)] == [4, 5]


def test_a_delta_job_compares_only_with_a_completed_run_of_its_name_owner_and_options(tmp_path):
    archive(tmp_path / "data", ["a.jpg", "b.jpg"])
    jobs = service(data_roots=str(tmp_path / "data"), results_url=f"file://{tmp_path / 'results'}")
    first = jobs.submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS)
    assert jobs.submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS).total == 2  # not completed
    run_to_the_end(jobs, first.id)
    other_owner = Caller(owner="b" * 32)
    assert jobs.submit_path("archive", JobOptions(2, incremental="nightly"), other_owner).total == 2
    assert jobs.submit_path("archive", JobOptions(3, incremental="nightly"), ANONYMOUS).total == 2  # top_k differs
    assert jobs.submit_path("archive", JobOptions(2, incremental="weekly"), ANONYMOUS).total == 2
    assert jobs.submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS).unchanged == 2


def test_delta_jobs_need_a_listing_and_a_results_sink(tmp_path):
    with pytest.raises(InvalidArgument, match="listing"):
        sink_service(tmp_path).submit_upload(JobOptions(2, incremental="nightly"), ANONYMOUS, files("a"))
    archive(tmp_path, ["a.jpg"])
    with pytest.raises(FailedPrecondition, match="keeps none") as refused:
        service(data_roots=str(tmp_path)).submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS)
    assert "PODIUM_RESULTS_URL" in refused.value.hint


def test_a_delta_job_classifies_again_what_its_baselines_files_lack(tmp_path):
    archive(tmp_path / "data", ["a.jpg", "b.jpg", "c.jpg"])
    jobs = service(data_roots=str(tmp_path / "data"), results_url=f"file://{tmp_path / 'results'}")
    first = jobs.submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS)
    run_to_the_end(jobs, first.id)
    sink = open_sink(jobs.settings.results_url)
    compact(sink, first.id)
    kept = job_table(sink, first.id).filter(pc.field("path") != "b.jpg")  # a row removed by hand
    sink.write(first.id, COMPACTED, parquet_bytes(kept))
    second = jobs.submit_path("archive", JobOptions(2, incremental="nightly"), ANONYMOUS)
    assert jobs.store.files(second.id, 0, 5) == ["b.jpg"]
    assert (second.total, second.unchanged) == (1, 2)
    run_to_the_end(jobs, second.id)
    assert [(r.index, r.path) for r in streamed(jobs, second.id)] == [(0, "b.jpg"), (1, "a.jpg"), (2, "c.jpg")]


def test_an_ended_jobs_parts_left_uncompacted_are_compacted_by_a_gateway(tmp_path):
    jobs = sink_service(tmp_path)
    job = cancelled_after_one_chunk(jobs)
    gone = upload(jobs, files("e"))
    jobs.cancel(gone.id, ANONYMOUS)
    jobs.delete(gone.id, ANONYMOUS)
    assert Compactions(jobs.store).run_once() == []  # not before the grace: a chunk may still land
    assert Compactions(jobs.store).run_once(now=time.time() + GRACE_S + 1) == [job.id]
    assert os.listdir(tmp_path / job.id) == [COMPACTED]
    assert Compactions(jobs.store, grace_s=0).run_once() == []
    lines = streamed(jobs, job.id)  # the compacted chunk, Redis's record of image 2, image 3 unprocessed
    assert [r.outcome for r in lines[:3]] == [OK, OK, OK]
    assert lines[3].outcome.error == CANCELLED_ERROR


def test_a_job_deleted_while_a_gateway_compacts_it_leaves_no_file(tmp_path, monkeypatch):
    from podium.stores.resultsink import FileSink

    jobs = sink_service(tmp_path)
    job = cancelled_after_one_chunk(jobs)
    read = FileSink.read

    def deleted_meanwhile(sink, job_id, name):
        monkeypatch.setattr(FileSink, "read", read)
        jobs.delete(job.id, ANONYMOUS)
        return read(sink, job_id, name)  # the part the merge listed went

    monkeypatch.setattr(FileSink, "read", deleted_meanwhile)
    assert Compactions(jobs.store, grace_s=0).run_once() == [job.id]
    assert not (tmp_path / job.id).exists()
    assert jobs.store.compactions_due(time.time() + 1) == []


def test_a_completed_job_leaves_the_compaction_queue_when_its_worker_compacts_it(tmp_path):
    jobs = sink_service(tmp_path)
    job = upload(jobs, files("a"))
    jobs.store.record(job.id, 0, OK, stamp=Stamp())
    assert commit(jobs, job.id, 0) is True
    assert jobs.store.compactions_due(time.time() + 1) == [job.id]  # ended: the worker compacts next
    compact(open_sink(jobs.settings.results_url), job.id)
    jobs.store.compacted(job.id)
    assert jobs.store.compactions_due(time.time() + 1) == []


def test_a_completed_jobs_results_come_in_bulk_as_the_same_lines(tmp_path):
    jobs = sink_service(tmp_path)
    job = upload(jobs, files("a", 'b "quoted".jpg', "c\tτ.jpg", "é/ü.jpg", "e"))
    mapped = ImageOutcome(
        predictions=(Prediction('rugby "union"', 70, 0.81234567), Prediction("polo é", 65, 0.125)),
        cam=ActivationMap.of(70, (2, 2), [1.0, 0.5, 0.0, 0.25]),
    )
    outcomes = [mapped, ImageOutcome(error='not a "recognised" image format'), OK, mapped, OK]
    for index, outcome in enumerate(outcomes):
        jobs.store.record(job.id, index, outcome, stamp=Stamp(f"{index:064x}"))
    with pytest.raises(FailedPrecondition, match="not got all its answers in result files"):
        list(jobs.result_table(job.id, ANONYMOUS, 0))  # not all in files yet
    for chunk in range(3):
        commit(jobs, job.id, chunk)
    one_by_one = [result_record(result_to_proto(result)) for result in streamed(jobs, job.id)]
    batches = [batch for part in jobs.result_table(job.id, ANONYMOUS, 0) for batch in ipc_batches(part)]
    assert [record for batch in batches for record in batch_records(batch)] == one_by_one
    assert [line for batch in batches for line in batch_lines(batch)] == [
        json.dumps(r, ensure_ascii=False) for r in one_by_one
    ]
    assert "cam" in one_by_one[0] and one_by_one[1]["error"] == 'not a "recognised" image format'
    later = [batch for part in jobs.result_table(job.id, ANONYMOUS, 3) for batch in ipc_batches(part)]
    assert [record for batch in later for record in batch_records(batch)] == one_by_one[3:]
