"""Processing one chunk of a job: every image read, classified and recorded exactly once."""

from __future__ import annotations

import logging
import time

from inference import TritonUnavailable, classify_bytes
from jobs import ImageOutcome, Job
from jobstore.errors import StoreFull, StoreUnavailable
from worker.runtime import Runtime
from worker.sources import SourceError, read_image_bytes

log = logging.getLogger(__name__)

# A chunk restarted more often than this fails its remaining images.
MAX_CHUNK_ATTEMPTS = 6
# An image during whose careful processing the worker died this often fails.
MAX_IMAGE_CRASHES = 2
_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 5.0


def process_chunk(rt: Runtime, job_id: str, chunk: int) -> int:
    """Classify the chunk's images that have no result yet; returns how many were recorded.

    A first attempt keeps several images in flight. A chunk started again after its
    worker died is processed one image at a time, each start counted, so that an image
    that kills the worker every time is found and failed instead of looping forever."""
    job = rt.store.get(job_id)
    if job is None or job.state.terminal:
        return 0
    attempt = rt.store.begin_attempt(job_id, chunk)
    if attempt < 0:
        return 0  # the job ended meanwhile
    todo = _pending_images(rt, job, chunk)
    if attempt > MAX_CHUNK_ATTEMPTS:
        reason = f"the worker process died {attempt - 1} times while processing this image's chunk"
        recorded = sum(rt.store.record(job_id, index, ImageOutcome(error=reason)) for index, _ in todo)
    elif attempt == 1:
        futures = [rt.pool.submit(_process_image, rt, job, index, path) for index, path in todo]
        recorded = sum(future.result() for future in futures)  # re-raises TritonUnavailable
    else:
        log.warning("job %s chunk %d: attempt %d, processing image by image", job_id, chunk, attempt)
        recorded = sum(_process_image_carefully(rt, job, index, path) for index, path in todo)
    rt.store.complete_chunk(job_id, chunk)
    rt.queue.pump(job_id)
    return recorded


def _process_image_carefully(rt: Runtime, job: Job, index: int, path: str) -> int:
    crashes = rt.store.begin_image(job.id, index)
    if crashes >= MAX_IMAGE_CRASHES:
        error = f"the worker process died {crashes} times while processing this image; skipped"
        return int(rt.store.record(job.id, index, ImageOutcome(error=error)))
    try:
        return _process_image(rt, job, index, path)
    finally:
        # Reached on success and on exceptions alike: only a dying process leaves the count.
        rt.store.end_image(job.id, index)


def fail_chunk(rt: Runtime, job_id: str, chunk: int, reason: str) -> None:
    """Give up on a chunk for good: its images without a result are marked failed."""
    job = rt.store.get(job_id)
    if job is None or job.state.terminal:
        return
    for index, _ in _pending_images(rt, job, chunk):
        rt.store.record(job_id, index, ImageOutcome(error=reason))
    rt.store.complete_chunk(job_id, chunk)
    rt.queue.pump(job_id)


def _pending_images(rt: Runtime, job: Job, chunk: int) -> list[tuple[int, str]]:
    size = rt.store.chunk_size(job.id)
    start = chunk * size
    done = rt.store.results(job.id, start, size)
    return [(start + i, path) for i, (path, outcome) in enumerate(done) if outcome is None]


def _process_image(rt: Runtime, job: Job, index: int, path: str) -> int:
    state = rt.store.state(job.id)
    if state is None or state.terminal:
        return 0  # cancelled meanwhile
    try:
        data = read_image_bytes(rt.store, job, index, path, rt.settings.max_file_bytes, rt.settings.data_root_list())
        outcome = _classify_waiting_for_triton(rt, data, job.top_k)
    except SourceError as exc:
        outcome = ImageOutcome(error=str(exc))
    except (TritonUnavailable, StoreUnavailable, StoreFull):
        raise  # not the image's fault: the task waits and retries
    except Exception:  # a bug must fail one image, not the job
        log.exception("unexpected error on image %d (%s) of job %s", index, path, job.id)
        outcome = ImageOutcome(error="internal error while processing this image (see the worker log)")
    return int(rt.store.record(job.id, index, outcome))


def _classify_waiting_for_triton(rt: Runtime, data: bytes, k: int) -> ImageOutcome:
    """Retry while Triton is unavailable, with backoff, up to triton_wait_s."""
    deadline = time.monotonic() + rt.settings.triton_wait_s
    delay = _BACKOFF_START_S
    while True:
        try:
            return classify_bytes(rt.classifier, data, k, rt.settings.max_pixels)
        except TritonUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Triton unavailable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)
