"""process_chunk on fakes: every image of a chunk recorded exactly once, bad ones failed alone."""

from __future__ import annotations

import pytest

from inference import TritonUnavailable
from jobs import ImageOutcome, JobMode, JobState
from jobstore import JobStore
from tests.support.fakes import CLASSES, FakeClassifier, FakeQueue, fake_store, png_bytes, pool
from worker.chunks import MAX_CHUNK_ATTEMPTS, MAX_IMAGE_CRASHES, fail_chunk, process_chunk
from worker.runtime import Runtime
from worker.settings import WorkerSettings


def runtime(store: JobStore | None = None, **settings) -> Runtime:
    store = store or fake_store()
    defaults = {"triton_wait_s": 0.1}
    return Runtime(
        settings=WorkerSettings(**(defaults | settings)),
        store=store,
        classifier=FakeClassifier(),
        queue=FakeQueue(store),
        pool=pool(),
    )


def upload_job(rt: Runtime, blobs: list[bytes], chunk_size: int = 4) -> str:
    job = rt.store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size)
    rt.store.append_files(job.id, 0, [f"img{i}.png" for i in range(len(blobs))], blobs)
    rt.store.finish_upload(job.id)
    return job.id


def outcomes(rt: Runtime, job_id: str) -> list[ImageOutcome | None]:
    return [outcome for _, outcome in rt.store.results(job_id, 0, 100)]


def test_a_chunk_classifies_its_images_and_enqueues_the_next():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10), png_bytes(250), png_bytes(130), png_bytes(10), png_bytes(10)])
    assert process_chunk(rt, job_id, 0) == 4
    labels = [outcome.predictions[0].label for outcome in outcomes(rt, job_id)[:4]]
    assert labels == [CLASSES[0], CLASSES[2], CLASSES[1], CLASSES[0]]
    assert outcomes(rt, job_id)[4] is None
    assert rt.queue.sent == [(job_id, 0), (job_id, 1)]  # the finished chunk freed a slot
    assert process_chunk(rt, job_id, 1) == 1
    assert rt.store.get(job_id).state is JobState.COMPLETED


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


def test_a_redelivered_chunk_records_nothing_twice():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 6)
    assert process_chunk(rt, job_id, 0) == 4
    assert process_chunk(rt, job_id, 0) == 0  # the same chunk again: every image has its result
    job = rt.store.get(job_id)
    assert job.succeeded == 4 and job.retries == 1


def test_an_unavailable_triton_is_no_fault_of_the_images():
    rt = runtime()
    rt.classifier.down = True
    job_id = upload_job(rt, [png_bytes(10)] * 2)
    with pytest.raises(TritonUnavailable):
        process_chunk(rt, job_id, 0)
    assert outcomes(rt, job_id) == [None, None]  # nothing failed: the task retries later
    rt.classifier.down = False
    process_chunk(rt, job_id, 0)
    assert rt.store.get(job_id).succeeded == 2


def test_giving_up_on_a_chunk_fails_its_images_with_the_reason():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 3)
    fail_chunk(rt, job_id, 0, "inference server unavailable: gone")
    assert [o.error for o in outcomes(rt, job_id)] == ["inference server unavailable: gone"] * 3


def test_a_chunk_that_keeps_killing_its_worker_fails_its_images():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 2)
    for _ in range(MAX_CHUNK_ATTEMPTS):
        rt.store.begin_attempt(job_id, 0)  # starts whose worker died before finishing
    process_chunk(rt, job_id, 0)
    assert all("worker process died" in outcome.error for outcome in outcomes(rt, job_id))


def test_after_a_crash_the_image_that_crashed_twice_fails_and_the_others_succeed():
    rt = runtime()
    job_id = upload_job(rt, [png_bytes(10)] * 3)
    rt.store.begin_attempt(job_id, 0)  # the first start died
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
    assert process_chunk(rt, job_id, 0) == 0
    assert process_chunk(rt, "0" * 32, 0) == 0
