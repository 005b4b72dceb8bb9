"""The gateway with a results sink on fakes: results read from Redis and the sink's files alike, delta
jobs over an archive, compaction of an ended job's parts, and results in bulk."""

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
from gateway.service import JobOptions, JobService
from podium.client.bulk import batch_lines, batch_records
from podium.client.output import result_record
from podium.core.errors import FailedPrecondition, InvalidArgument
from podium.core.jobs import ActivationMap, ImageOutcome, JobState, Prediction
from podium.stores.jobstore import Stamp
from podium.stores.resultsink import COMPACTED, ResultRow, compact, ipc_batches, job_table, open_sink, write_part
from podium.stores.resultsink.rows import parquet_bytes
from tests.support.gateway import OK, files, service, upload


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
