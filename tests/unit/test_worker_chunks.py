"""process_chunk on fakes: every image of a chunk recorded exactly once, bad ones failed alone."""

from __future__ import annotations

import hashlib
import threading

import pytest

from podium.core.jobs import ImageOutcome, JobMode, JobState
from podium.stores.jobstore import JobStore
from podium.stores.jobstore.schema import JobKeys
from podium.stores.resultsink import COMPACTED, SinkUnavailable, job_table, part_name, part_names, table_rows
from tests.support.fakes import CLASSES, FakeClassifiers, FakeQueue, fake_store, png_bytes, pool
from worker.chunks import MAX_CHUNK_DEATHS, MAX_IMAGE_CRASHES, process_chunk
from worker.outage import OutageClock
from worker.runtime import Runtime
from worker.settings import WorkerSettings


def runtime(store: JobStore | None = None, **settings) -> Runtime:
    store = store or fake_store()
    defaults = {"triton_outage_limit_s": 0.5, "chunk_lease_s": 5}
    worker_settings = WorkerSettings(**(defaults | settings))
    return Runtime(
        settings=worker_settings,
        store=store,
        classifiers=FakeClassifiers(),
        queue=FakeQueue(store),
        pool=pool(),
        decoder=worker_settings.decoder(),
    )


def upload_job(rt: Runtime, blobs: list[bytes], chunk_size: int = 4) -> str:
    job = rt.store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size)
    rt.store.append_files(job.id, 0, [f"img{i}.png" for i in range(len(blobs))], blobs)
    rt.store.finish_upload(job.id)
    return job.id


def die_holding(rt: Runtime, job_id: str, chunk: int, token: str) -> None:
    """A start whose worker died: it took the lease, never released it, and the lease ran out."""
    assert rt.store.acquire_chunk(job_id, chunk, token, 60).taken
    rt.store._redis.delete(JobKeys(job_id).lease(chunk))


def outcomes(rt: Runtime, job_id: str) -> list[ImageOutcome | None]:
    return [outcome for _, outcome in rt.store.results(job_id, 0, 100)]


def test_a_chunk_classifies_its_images_and_enqueues_the_next():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10), png_bytes(250), png_bytes(130), png_bytes(10), png_bytes(10)])
    assert process_chunk(rt, job_id, 0).recorded == 4
    labels = [outcome.predictions[0].label for outcome in outcomes(rt, job_id)[:4]]
    assert labels == [CLASSES[0], CLASSES[2], CLASSES[1], CLASSES[0]]
    assert outcomes(rt, job_id)[4] is None
    assert rt.queue.sent == [(job_id, 0), (job_id, 1)]  # the finished chunk freed a slot
    assert process_chunk(rt, job_id, 1).recorded == 1
    assert rt.store.get(job_id).state is JobState.COMPLETED
    assert rt.store.get(job_id).retries == 0


def test_a_bad_image_fails_alone():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10), b"", b"\x89PNG broken", png_bytes(250)])
    process_chunk(rt, job_id, 0)
    results = outcomes(rt, job_id)
    assert results[0].ok and results[3].ok
    assert results[1].error == "empty file (0 bytes)"
    assert "corrupt" in results[2].error or "not a recognised" in results[2].error
    job = rt.store.get(job_id)
    assert (job.succeeded, job.failed, job.state) == (2, 2, JobState.COMPLETED)


def test_an_uploaded_image_whose_bytes_are_gone_fails_alone():
    """A chunk's blobs come in one read; one that is missing fails its image, saying why."""
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10), png_bytes(250), png_bytes(130)])
    rt.store._redis.hdel(JobKeys(job_id).blobs, "1")
    process_chunk(rt, job_id, 0)
    results = outcomes(rt, job_id)
    assert results[0].ok and results[2].ok
    assert results[1].error == "uploaded bytes are gone (job cancelled or expired)"


def test_a_redelivered_chunk_records_nothing_twice():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 6)
    assert process_chunk(rt, job_id, 0).recorded == 4
    assert process_chunk(rt, job_id, 0) == process_chunk(rt, job_id, 0)  # done: nothing to do, nothing counted
    job = rt.store.get(job_id)
    assert job.succeeded == 4 and job.retries == 0


def test_a_second_copy_of_a_running_chunk_backs_off():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 4)
    assert rt.store.acquire_chunk(job_id, 0, "the first copy", 30).taken
    run = process_chunk(rt, job_id, 0)
    assert run.recorded == 0 and 1 <= run.retry_in_s <= 31
    assert outcomes(rt, job_id) == [None] * 4 and rt.store.get(job_id).retries == 0


def test_a_triton_outage_shorter_than_the_limit_fails_no_image():
    rt = runtime(triton_outage_limit_s=30)
    rt.classifiers.models["resnet50_sports"].down = True
    threading.Timer(1.0, lambda: setattr(rt.classifiers.models["resnet50_sports"], "down", False)).start()
    job_id = upload_job(rt, [png_bytes(10)] * 3)
    assert process_chunk(rt, job_id, 0).recorded == 3
    assert all(outcome.ok for outcome in outcomes(rt, job_id))


def test_beyond_the_outage_limit_images_fail_saying_so():
    rt = runtime(triton_outage_limit_s=0.5)
    rt.classifiers.models["resnet50_sports"].down = True
    job_id = upload_job(rt, [png_bytes(10)] * 3)
    process_chunk(rt, job_id, 0)
    errors = [o.error for o in outcomes(rt, job_id)]
    assert all(e.startswith("inference server unavailable for 0.0 minutes") for e in errors), errors
    assert rt.store.get(job_id).retries == 0  # no worker died


def test_a_chunk_that_keeps_killing_its_worker_fails_its_images():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 2)
    for number in range(MAX_CHUNK_DEATHS):
        die_holding(rt, job_id, 0, f"dead worker {number}")
    process_chunk(rt, job_id, 0)
    assert all("worker process died" in outcome.error for outcome in outcomes(rt, job_id))


def test_after_a_crash_the_image_that_crashed_twice_fails_and_the_others_succeed():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 3)
    die_holding(rt, job_id, 0, "dead worker")
    for _ in range(MAX_IMAGE_CRASHES):
        rt.store.begin_image(job_id, 1)  # image 1 was being processed each time it died
    process_chunk(rt, job_id, 0)
    results = outcomes(rt, job_id)
    assert results[0].ok and results[2].ok
    assert "died 2 times while processing this image" in results[1].error


def test_a_cancelled_job_is_left_alone():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 2)
    rt.store.cancel(job_id)
    assert process_chunk(rt, job_id, 0).recorded == 0
    assert process_chunk(rt, "0" * 32, 0).recorded == 0


def test_with_several_images_per_request_each_image_still_gets_its_own_outcome():
    from podium.stores.inference.batching import BatchingClassifier
    from tests.support.fakes import FakeClassifier

    rt = runtime(inflight=4)
    fake = FakeClassifier()
    rt.classifiers.models["resnet50_sports"] = BatchingClassifier(fake, images_per_request=4, max_wait_s=0.2)
    rt.pool = pool(threads=4)
    job_id = upload_job(rt, [png_bytes(10), b"not an image", png_bytes(250), png_bytes(130)], chunk_size=4)
    assert process_chunk(rt, job_id, 0).recorded == 4
    got = outcomes(rt, job_id)
    assert [o.predictions[0].label if o.ok else "error" for o in got] == [CLASSES[0], "error", CLASSES[2], CLASSES[1]]
    assert "not a recognised image" in got[1].error or got[1].error
    assert max(fake.batches) == 3  # the three good images rode in one request; the bad one never reached it


def test_the_chunk_is_the_batch():
    """A chunk's decodable images go to Triton as requests of up to images_per_request; a
    broken file fails alone; the answers equal one-image requests' answers."""
    rt = runtime(images_per_request=4, result_cache=False)
    model = rt.classifiers.models["resnet50_sports"]
    blobs = [png_bytes(10 + 20 * i) for i in range(10)]
    blobs[3] = b"not an image"
    job_id = upload_job(rt, blobs, chunk_size=10)
    assert process_chunk(rt, job_id, 0).recorded == 10
    # Requests of at most four, formed before decoding: the broken file leaves its request one short.
    assert sorted(model.batches) == [2, 3, 4]
    got = outcomes(rt, job_id)
    assert not got[3].ok and "not a recognised image format" in got[3].error
    one_by_one = runtime(images_per_request=1, result_cache=False)
    again = upload_job(one_by_one, blobs, chunk_size=1)
    for chunk in range(10):
        process_chunk(one_by_one, again, chunk)
    assert outcomes(one_by_one, again)[:10] == got[:10]
    assert rt.store.get(job_id).state is JobState.COMPLETED


def test_requests_are_no_larger_than_the_model_takes():
    """PODIUM_IMAGES_PER_REQUEST above the model's max_batch_size sizes requests to the model
    (Triton would refuse a larger one whole, failing every image of it)."""
    rt = runtime(images_per_request=64, result_cache=False)
    model = rt.classifiers.models["resnet50_sports"]
    model.max_batch_size = 3
    job_id = upload_job(rt, [png_bytes(10 + 20 * i) for i in range(8)], chunk_size=8)
    assert process_chunk(rt, job_id, 0).recorded == 8
    assert sorted(model.batches) == [2, 3, 3]
    assert rt.store.get(job_id).succeeded == 8


def test_a_redelivered_batched_chunk_records_nothing_twice():
    rt = runtime(images_per_request=8)
    job_id = upload_job(rt, [png_bytes(10 + 30 * i) for i in range(6)], chunk_size=6)
    assert process_chunk(rt, job_id, 0).recorded == 6
    job = rt.store.get(job_id)
    from worker.chunk_batch import classify_chunk_batched

    todo = [(i, f"img{i}.png") for i in range(6)]  # the same chunk, run again by a second worker
    assert classify_chunk_batched(rt, job, todo, rt.classifier(job)) == {}
    done = rt.store.get(job_id)
    assert (done.succeeded, done.failed) == (6, 0)


def sink_job(rt: Runtime, tmp_path, blobs: list[bytes], chunk_size: int = 4) -> str:
    job = rt.store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size, results_url=f"file://{tmp_path}")
    rt.store.append_files(job.id, 0, [f"img{i}.png" for i in range(len(blobs))], blobs)
    rt.store.finish_upload(job.id)
    return job.id


@pytest.mark.parametrize("last", [False, True], ids=["a part", "the compaction"])
def test_a_job_deleted_while_its_chunk_writes_leaves_no_file_and_no_error(tmp_path, monkeypatch, last):
    """The client deletes the job while a chunk's file is written, or (the last chunk) while
    its parts are merged: what the chunk writes after the deletion's removal goes too, and
    the parts that went under the merge are no error."""
    from podium.stores import resultsink
    from podium.stores.resultsink import FileSink

    rt = runtime()
    job_id = sink_job(rt, tmp_path, [png_bytes(10 + 40 * i) for i in range(8)])
    if last:
        process_chunk(rt, job_id, 0)
    patched = (FileSink, "read") if last else (resultsink, "write_part")
    original = getattr(*patched)

    def deleted_meanwhile(*args, **kwargs):
        sink = rt.sink(f"file://{tmp_path}")
        sink.remove_job(job_id)  # the gateway's delete: files, then keys, then files again
        rt.store.delete(job_id)
        sink.remove_job(job_id)
        monkeypatch.setattr(*patched, original)
        return original(*args, **kwargs)  # the part lands; the merge finds its part gone

    monkeypatch.setattr(*patched, deleted_meanwhile)
    process_chunk(rt, job_id, 1 if last else 0)
    assert not (tmp_path / job_id).exists()
    assert rt.store.job_keys(job_id) == []


def test_with_a_results_sink_each_chunk_lands_as_a_file_and_the_last_one_compacts(tmp_path):
    rt = runtime()
    blobs = [png_bytes(10), b"", png_bytes(250), png_bytes(130), png_bytes(10), png_bytes(10)]
    job_id = sink_job(rt, tmp_path, blobs)
    process_chunk(rt, job_id, 0)
    assert part_names(rt.sink(f"file://{tmp_path}"), job_id) == [part_name(0)]
    assert rt.store.get(job_id).state is JobState.RUNNING  # chunk 1 has not landed
    process_chunk(rt, job_id, 1)
    assert rt.store.get(job_id).state is JobState.COMPLETED
    assert sorted(p.name for p in (tmp_path / job_id).iterdir()) == [COMPACTED]
    table = job_table(rt.sink(f"file://{tmp_path}"), job_id)
    assert table.column("index").to_pylist() == list(range(6))
    assert table.column("status").to_pylist() == ["ok", "error", "ok", "ok", "ok", "ok"]
    assert table.column("label").to_pylist()[:4] == [CLASSES[0], None, CLASSES[2], CLASSES[1]]
    assert table.column("sha256").to_pylist()[2] == hashlib.sha256(blobs[2]).hexdigest()
    assert table.column("error").to_pylist()[1] == "empty file (0 bytes)"
    # Redis keeps the job's record only; the files' answers are those of a job without a sink.
    assert rt.store.job_keys(job_id) == [f"podium:job:{job_id}"]
    kept = upload_job(rt, blobs)
    process_chunk(rt, kept, 0)
    process_chunk(rt, kept, 1)
    rows = list(table_rows(table))
    assert [(row.path, row.recorded.outcome) for row in rows] == rt.store.results(kept, 0, 6)


def test_a_chunk_recorded_in_one_run_lands_as_its_records_read_back_would_make_it(tmp_path, monkeypatch):
    from podium.stores.resultsink import parts

    rt = runtime()
    job_id = sink_job(rt, tmp_path, [png_bytes(10), b"", png_bytes(250), png_bytes(130), png_bytes(10)])
    landed = []
    write = parts.write_part

    def compared(sink, job, start, rows, model):
        # Before the chunk is counted, its records are still in Redis: the file's rows must be them.
        recorded = rt.store.recorded(job, start, 4)
        landed.append((sorted(rows, key=lambda row: row.index), [(i + start, *r) for i, r in enumerate(recorded)]))
        write(sink, job, start, rows, model)

    monkeypatch.setattr(parts, "write_part", compared)
    process_chunk(rt, job_id, 0)
    ((rows, recorded),) = landed
    assert [(row.index, row.path, row.recorded) for row in rows] == recorded
    assert len(rows) == 4 and rows[1].recorded.outcome.error == "empty file (0 bytes)"


def test_a_chunk_delivered_again_after_its_answers_but_before_its_file_writes_the_file(tmp_path, monkeypatch):
    rt = runtime()
    job_id = sink_job(rt, tmp_path, [png_bytes(10)] * 4)

    def refused(*_args, **_kwargs):
        raise SinkUnavailable("results sink: writing part: No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr("podium.stores.resultsink.parts.write_part", refused)
        with pytest.raises(SinkUnavailable):
            process_chunk(rt, job_id, 0)
    assert rt.store.get(job_id).succeeded == 4 and rt.store.get(job_id).state is JobState.RUNNING
    assert process_chunk(rt, job_id, 0).recorded == 0  # nothing classified again
    assert rt.store.get(job_id).state is JobState.COMPLETED
    assert job_table(rt.sink(f"file://{tmp_path}"), job_id).num_rows == 4
    assert rt.store.get(job_id).retries == 0  # the refused start ended in order: not a death


def test_an_outage_clock_starts_again_after_a_quiet_gap(monkeypatch):
    clock = OutageClock()
    now = [100.0]
    monkeypatch.setattr("worker.outage.time.monotonic", lambda: now[0])
    assert clock.failing(gap_s=60) == 0
    now[0] = 130.0
    assert clock.failing(gap_s=60) == 30  # the same outage
    now[0] = 4000.0
    assert clock.failing(gap_s=60) == 0  # hours later: a new one, not a 65-minute outage
    now[0] = 4010.0
    assert clock.failing() == 10
