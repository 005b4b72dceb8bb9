"""JobService and UploadAssembler on fakes: the store on fakeredis, a recording queue, a fake Triton."""

from __future__ import annotations

import pytest

from errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from gateway.service import CANCELLED_ERROR, JobService
from gateway.settings import GatewaySettings
from gateway.uploads import FileChunk, UploadAssembler
from jobs import ImageOutcome, JobMode, JobState, Prediction
from tests.support.fakes import CLASSES, FakeClassifier, FakeQueue, fake_store, png_bytes

OK = ImageOutcome(predictions=(Prediction("archery", 0, 0.9),))


def service(**settings) -> JobService:
    store = fake_store()
    defaults = {"chunk_size": 2, "max_queued_chunks": 2}
    return JobService(GatewaySettings(**(defaults | settings)), store, FakeQueue(store), FakeClassifier())


def files(*names: str, data: bytes = b"bytes") -> list[FileChunk]:
    return [FileChunk(name, data, True) for name in names]


def test_an_upload_becomes_a_running_job_with_its_chunks_queued():
    jobs = service()
    job = jobs.submit_upload(3, "finals", files("a.jpg", "b.jpg", "c/d.jpg", "e.jpg", "f.jpg"))
    assert (job.state, job.total, job.top_k, job.name, job.mode) == (JobState.RUNNING, 5, 3, "finals", JobMode.UPLOAD)
    assert jobs.queue.sent == [(job.id, 0), (job.id, 1)]  # bounded: 2 of the 3 chunks
    assert jobs.store.files(job.id, 0, 5) == ["a.jpg", "b.jpg", "c/d.jpg", "e.jpg", "f.jpg"]
    assert jobs.store.blob(job.id, 2) == b"bytes"


def test_a_file_in_several_chunks_is_joined():
    jobs = service()
    chunks = [FileChunk("a.jpg", b"ab", False), FileChunk("a.jpg", b"cd", False), FileChunk("a.jpg", b"", True)]
    job = jobs.submit_upload(0, "", chunks)
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
        jobs.submit_upload(0, "", chunks)
    assert jobs.store.active_jobs() == 0  # the job ended (failed) with its upload


def test_oversized_and_unreadable_files_fail_alone():
    jobs = service(max_file_bytes=4)
    chunks = [
        FileChunk("big.jpg", b"12345", True),
        FileChunk("locked.jpg", b"", True, "Permission denied"),
        FileChunk("ok.jpg", b"1234", True),
    ]
    job = jobs.submit_upload(0, "", chunks)
    results = {path: outcome for path, outcome in jobs.store.results(job.id, 0, 3)}
    assert "larger than the limit of 4 bytes" in results["big.jpg"].error
    assert "could not read this file: Permission denied" in results["locked.jpg"].error
    assert results["ok.jpg"] is None and jobs.store.blob(job.id, 2) == b"1234"


def test_the_assembler_waits_while_the_job_holds_too_many_unprocessed_images():
    store = fake_store()
    settings = GatewaySettings(max_pending_uploads=2)
    job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    assembler = UploadAssembler(store, job.id, settings, lambda job_id: None)
    for name in ("a", "b"):
        assembler.add_chunk(FileChunk(name, b"x", True))
    assembler.flush()
    assert store.pending_uploads(job.id) == 2
    store.cancel(job.id)  # nobody will ever process them: the wait must end, with a reason
    assembler.add_chunk(FileChunk("c", b"x", True))
    with pytest.raises(FailedPrecondition, match="ended during its upload"):
        assembler.flush()


def test_too_many_active_jobs_are_refused():
    jobs = service(max_active_jobs=1)
    jobs.store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    with pytest.raises(ResourceExhausted, match="already runs 1 jobs"):
        jobs.submit_upload(0, "", files("a"))


@pytest.mark.parametrize(("top_k", "name"), [(1001, ""), (-1, ""), (5, "x" * 201)])
def test_bad_options_are_invalid_arguments(top_k, name):
    with pytest.raises(InvalidArgument):
        service().submit_upload(top_k, name, files("a"))


def test_path_mode_lists_the_folder_under_a_data_root(tmp_path):
    (tmp_path / "finals" / "day1").mkdir(parents=True)
    for name in ("finals/b.jpg", "finals/a.jpg", "finals/day1/c.jpg", "finals/.hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    jobs = service(data_roots=str(tmp_path))
    job = jobs.submit_path("finals", 2, "")
    assert (job.mode, job.total, job.root) == (JobMode.PATH, 3, str(tmp_path / "finals"))
    assert jobs.store.files(job.id, 0, 3) == ["a.jpg", "b.jpg", "day1/c.jpg"]
    with pytest.raises(InvalidArgument, match="outside the data roots"):
        jobs.submit_path("/etc", 2, "")
    with pytest.raises(FailedPrecondition, match="path mode is off"):
        service().submit_path(str(tmp_path), 2, "")


def test_results_of_a_cancelled_job_give_every_image_one_line():
    jobs = service()
    job = jobs.submit_upload(0, "", files("a", "b", "c"))
    jobs.store.record(job.id, 1, OK)
    jobs.cancel(job.id)
    results = list(jobs.results(job.id, 0, follow=True, is_active=lambda: True))
    assert [(r.index, r.path) for r in results] == [(0, "a"), (1, "b"), (2, "c")]
    assert results[1].outcome == OK
    assert results[0].outcome.error == results[2].outcome.error == CANCELLED_ERROR


def test_results_without_follow_skip_unfinished_images():
    jobs = service()
    job = jobs.submit_upload(0, "", files("a", "b", "c"))
    jobs.store.record(job.id, 2, OK)
    assert [r.index for r in jobs.results(job.id, 0, follow=False, is_active=lambda: True)] == [2]
    assert [r.index for r in jobs.results(job.id, 3, follow=False, is_active=lambda: True)] == []
    with pytest.raises(InvalidArgument):
        list(jobs.results(job.id, -1, follow=False, is_active=lambda: True))


def test_watch_ends_with_the_first_terminal_state():
    jobs = service()
    job = jobs.submit_upload(0, "", files("a", "b"))
    for index in range(2):
        jobs.store.record(job.id, index, OK)
    seen = list(jobs.watch(job.id, is_active=lambda: True))
    assert seen[-1].state is JobState.COMPLETED and seen[-1].succeeded == 2


def test_unknown_jobs_are_not_found():
    jobs = service()
    for call in (
        lambda: jobs.get("0" * 32),
        lambda: jobs.cancel("0" * 32),
        lambda: list(jobs.watch("0" * 32, lambda: True)),
        lambda: list(jobs.results("0" * 32, 0, False, lambda: True)),
    ):
        with pytest.raises(NotFound):
            call()


def test_classify_answers_from_the_model_and_refuses_bad_requests():
    jobs = service(classify_max_images=2)
    outcomes = jobs.classify([("dark.png", png_bytes(10)), ("junk", b"not an image")], top_k=2)
    assert outcomes[0].predictions[0].label == CLASSES[0] and len(outcomes[0].predictions) == 2
    assert "not a recognised image format" in outcomes[1].error
    with pytest.raises(InvalidArgument, match="at most 2 images"):
        jobs.classify([("a", b"")] * 3, top_k=1)
    with pytest.raises(InvalidArgument, match="at least one image"):
        jobs.classify([], top_k=1)
    jobs.classifier().down = True
    with pytest.raises(Unavailable, match="inference server is not available"):
        jobs.classify([("a", png_bytes(10))], top_k=1)
