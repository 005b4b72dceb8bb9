"""Processing one chunk of a job: every image read, classified and recorded exactly once.

A chunk runs under a lease (``worker.lease``): a second copy of a running chunk backs off
and is tried again when the lease would end. Starts are counted, and a start that ends in
order (done, backed off, or stopped by an error) is uncounted when its lease is released,
so the count says how often a worker *died* on the chunk. After a death the chunk is run
one image at a time, each image's starts counted the same way, so that an image that
kills its worker every time is failed alone instead of looping forever.

An unavailable Triton fails no image: each waits, with backoff, until the outage (timed
per process, from its first failure) passes ``triton_outage_limit_s``; then the images
fail saying how long the inference server has been unavailable.

A byte-identical copy of an image already answered (same model version, top-k and
explain) is answered from the result cache (``podium.stores.jobstore.cache``), and one whose twin is
in flight in this process waits for the twin's answer (``worker.single_flight``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from podium.core.jobs import ImageOutcome, Job
from podium.stores.inference import TritonClassifier, classify_bytes
from podium.stores.jobstore.errors import StoreFull, StoreUnavailable
from podium.stores.jobstore.records import Stamp
from worker.chunk_batch import Made, classify_chunk_batched
from worker.commit import commit_chunk
from worker.lease import LeaseKeeper, release_leftovers
from worker.metrics import worker_metrics
from worker.runtime import Runtime
from worker.sources import SourceError, read_image_bytes
from worker.triton_wait import waiting_for_triton

log = logging.getLogger(__name__)

# After this many deaths of its worker, a chunk's remaining images fail.
MAX_CHUNK_DEATHS = 5
# An image during whose careful processing the worker died this often fails.
MAX_IMAGE_CRASHES = 2


@dataclass(frozen=True)
class ChunkRun:
    """What a run of process_chunk did: images recorded, or when to try again (chunk busy)."""

    recorded: int = 0
    retry_in_s: float | None = None


def process_chunk(rt: Runtime, job_id: str, chunk: int) -> ChunkRun:
    """Classify the chunk's images that have no result yet (see the module's docstring)."""
    release_leftovers(rt.store, rt.unreleased)
    job = rt.store.get(job_id)
    if job is None or job.state.terminal:
        return ChunkRun()
    token = uuid.uuid4().hex
    claim = rt.store.acquire_chunk(job_id, chunk, token, rt.settings.chunk_lease_s)
    if claim.outcome == "busy":
        return ChunkRun(retry_in_s=max(1.0, claim.value / 1000 + 1))
    if not claim.taken:
        return ChunkRun()  # done already, or the job ended
    if claim.value > 1:
        worker_metrics().chunk_retries.inc()
    with LeaseKeeper(rt.store, job_id, chunk, token, rt.settings.chunk_lease_s, rt.unreleased):
        recorded, made = _classify_chunk(rt, job, chunk, deaths=claim.value - 1)
        commit_chunk(rt, job, chunk, made)
    worker_metrics().chunks.inc()
    rt.queue.pump(job_id)
    return ChunkRun(recorded)


def _classify_chunk(rt: Runtime, job: Job, chunk: int, deaths: int) -> tuple[int, Made | None]:
    """(images recorded, and when this run recorded every image of the chunk, those records)."""
    todo, listed = _pending_images(rt, job, chunk)
    if not todo:
        return 0, None  # delivered again after its images were recorded: only the commit is left
    if deaths >= MAX_CHUNK_DEATHS:
        reason = f"the worker process died {deaths} times while processing this image's chunk"
        stamp = Stamp() if job.results_url else None
        return sum(rt.store.record(job.id, index, ImageOutcome(error=reason), stamp=stamp) for index, _ in todo), None
    if deaths == 0:
        made = classify_chunk_batched(rt, job, todo, rt.classifier(job))
        return len(made), made if len(made) == listed else None
    log.warning("job %s chunk %d: its worker died %d times; processing image by image", job.id, chunk, deaths)
    return sum(_process_image_carefully(rt, job, index, path) for index, path in todo), None


def _process_image_carefully(rt: Runtime, job: Job, index: int, path: str) -> int:
    crashes = rt.store.begin_image(job.id, index)
    if crashes >= MAX_IMAGE_CRASHES:
        error = f"the worker process died {crashes} times while processing this image; skipped"
        return int(
            rt.store.record(job.id, index, ImageOutcome(error=error), stamp=Stamp() if job.results_url else None)
        )
    try:
        return _process_image(rt, job, index, path)
    finally:
        # Reached on success and on exceptions alike: only a dying process leaves the count.
        rt.store.end_image(job.id, index)


def _pending_images(rt: Runtime, job: Job, chunk: int) -> tuple[list[tuple[int, str]], int]:
    """(index, path) of the chunk's images without a record, and how many images it lists."""
    start, size = rt.store.chunk_layout(job.id).span(chunk)
    done = rt.store.results(job.id, start, size)
    return [(start + i, path) for i, (path, outcome) in enumerate(done) if outcome is None], len(done)


def _process_image(rt: Runtime, job: Job, index: int, path: str) -> int:
    state = rt.store.state(job.id)
    if state is None or state.terminal:
        return 0  # cancelled meanwhile
    started = time.perf_counter()
    cached = False
    digest = None
    try:
        data = read_image_bytes(rt.store, rt.objects, rt.settings, job, index, path)
        digest = rt.digest(job, data)
        outcome, cached = _answer(rt, job, data, digest)
    except SourceError as exc:
        outcome = ImageOutcome(error=str(exc))
    except (StoreUnavailable, StoreFull):
        raise  # not the image's fault: the task waits for Redis and runs again
    except Exception:  # a bug must fail one image, not the job
        log.exception("unexpected error on image %d (%s) of job %s", index, path, job.id)
        outcome = ImageOutcome(error="internal error while processing this image (see the worker log)")
    stamp = Stamp(digest) if job.results_url else None
    recorded = rt.store.record(job.id, index, outcome, cached=cached, stamp=stamp)
    if recorded:
        metrics = worker_metrics()
        metrics.image_done(outcome.ok, cached)
        metrics.stage("total", time.perf_counter() - started)
    return int(recorded)


def _answer(rt: Runtime, job: Job, data: bytes, digest: str | None) -> tuple[ImageOutcome, bool]:
    """(the image's outcome, whether it is a duplicate's answer); ``digest``: the bytes' sha256."""
    key = rt.cache_key(job, digest)
    if key is None or rt.cache is None:
        return _classify_waiting_for_triton(rt, rt.classifier(job), data, job), False
    hit = rt.cache.get(key)
    worker_metrics().cache_lookups.labels(result="miss" if hit is None else "hit").inc()
    if hit is not None:
        return hit, True

    def classify_and_keep() -> tuple[ImageOutcome, bool]:
        # A twin may have finished between the lookup above and this flight: look again.
        found = rt.cache.get(key)  # type: ignore[union-attr]
        if found is not None:
            return found, True
        outcome = _classify_waiting_for_triton(rt, rt.classifier(job), data, job)
        rt.cache.put(key, outcome)  # type: ignore[union-attr]
        return outcome, False

    (outcome, from_cache), shared = rt.single_flight.run(key, classify_and_keep)
    return outcome, from_cache or (shared and outcome.ok)


def _classify_waiting_for_triton(rt: Runtime, classifier: TritonClassifier, data: bytes, job: Job) -> ImageOutcome:
    """Retry while Triton is unavailable, with backoff, until the outage passes its limit."""
    stage = worker_metrics().stage
    return waiting_for_triton(rt, lambda: classify_bytes(classifier, data, job.top_k, rt.decoder, job.explain, stage))
