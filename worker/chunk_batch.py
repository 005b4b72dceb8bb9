"""A chunk's images as one batch: the chunk is the unit of work, not the image.

1. Read every pending image and hash it, in the process's pool (one job-state check for
   the chunk, not one per image; each folder walked once).
2. Look the chunk's keys up in the result cache with one MGET; a duplicate within the
   chunk rides on its first copy.
3. Decode the images still to classify, in the pool (Pillow releases the GIL), and
4. send them to Triton as multi-image requests of up to ``images_per_request`` (at most the
   model's ``max_batch_size``), each as soon as its images are decoded, each retried while
   Triton is unavailable, as a single image is.
5. Record each answer (the store's Lua records an index once: a redelivered chunk records
   nothing twice) and keep the new answers in the cache.

The careful image-by-image path after a worker died (``worker.chunks``) and models that
decode on the server (encoded input) keep the one-image way.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from podium.core.imaging import ImageDecodeError
from podium.core.jobs import ImageOutcome, Job, JobMode, RecordedOutcome
from podium.core.modelmeta import ENCODED_INPUT
from podium.stores.inference import TritonClassifier, TritonError, TritonUnavailable, classify_bytes
from podium.stores.inference.pipeline import outcomes_of
from podium.stores.jobstore.chunk_rates import ChunkRates
from podium.stores.jobstore.errors import StoreFull, StoreUnavailable
from podium.stores.jobstore.records import Stamp
from worker.metrics import worker_metrics
from worker.runtime import Runtime
from worker.sources import OpenFolders, SourceError, read_image_bytes
from worker.triton_wait import waiting_for_triton

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error while processing this image (see the worker log)"

# The records a run made: index -> (path, what the store kept for it).
Made = dict[int, tuple[str, RecordedOutcome]]


@dataclass
class _Image:
    index: int
    path: str
    data: bytes | None = None
    sha256: str | None = None  # of data, once read
    key: str | None = None
    pixels: np.ndarray | None = None
    outcome: ImageOutcome | None = None
    cached: bool = False
    twin_of: _Image | None = None  # an earlier copy in the chunk answers this one


def classify_chunk_batched(rt: Runtime, job: Job, todo: list[tuple[int, str]], classifier: TritonClassifier) -> Made:
    """Classify and record ``todo``'s images; returns the records this run made, index ->
    (path, what was stored), from which the chunk's file is made without reading them back."""
    state = rt.store.state(job.id)
    if state is None or state.terminal:
        return {}  # cancelled meanwhile
    # The chunk batches its own requests: no waiting to gather other threads' images.
    classifier = getattr(classifier, "inner", classifier)
    started = time.perf_counter()
    # An upload's bytes come in one HMGET for the chunk, not a round trip per image.
    blobs = rt.store.blobs(job.id, [index for index, _ in todo]) if job.mode is JobMode.UPLOAD else [None] * len(todo)
    with OpenFolders() as folders:  # the chunk's folders are walked once, not once per file
        # As many groups as threads: an object store's GETs wait on the network, all in parallel.
        groups = _groups(list(zip(todo, blobs, strict=True)), rt.settings.inflight)
        groups = rt.pool.map(lambda group: [_read(rt, job, folders, *item, blob) for item, blob in group], groups)
        images = [image for group in groups for image in group]
    _answer_from_cache(rt, images)
    leaders = [image for image in images if image.outcome is None and image.twin_of is None]
    meta = waiting_for_triton(rt, classifier.metadata)
    if isinstance(meta, ImageOutcome):  # Triton stayed away past the outage limit
        for image in leaders:
            image.outcome = meta
    elif meta.input_format == ENCODED_INPUT:  # the server decodes (gpu-dali): one file per request
        list(rt.pool.map(lambda image: _classify_encoded(rt, job, classifier, image), leaders))
    else:
        _decode_and_classify(rt, job, classifier, leaders, meta.preprocessing.spec())
    recorded = _record(rt, job, images, started)
    # What the gateway sizes new jobs' chunks by (podium.stores.jobstore.chunk_rates).
    ChunkRates(rt.store.client).note(job.model_name or rt.settings.model_name, len(todo), time.perf_counter() - started)
    return recorded


def _read(rt: Runtime, job: Job, folders: OpenFolders, index: int, path: str, blob: bytes | None) -> _Image:
    """The image's bytes (``blob``: already read, an upload's), hash and cache key."""
    image = _Image(index, path)
    try:
        image.data = (
            blob if blob is not None else read_image_bytes(rt.store, rt.objects, rt.settings, job, index, path, folders)
        )
        image.sha256 = rt.digest(job, image.data)
        image.key = rt.cache_key(job, image.sha256)
    except SourceError as exc:
        image.outcome = ImageOutcome(error=str(exc))
    except (StoreUnavailable, StoreFull):
        raise  # not the image's fault: the task waits for Redis and runs again
    except Exception:  # a bug must fail one image, not the job
        log.exception("unexpected error reading image %d (%s) of job %s", index, path, job.id)
        image.outcome = ImageOutcome(error=INTERNAL_ERROR)
    return image


def _answer_from_cache(rt: Runtime, images: list[_Image]) -> None:
    keyed = [image for image in images if image.outcome is None and image.key is not None]
    if rt.cache is None or not keyed:
        return
    first: dict[str, _Image] = {}
    for image in keyed:
        if image.key in first:
            image.twin_of = first[image.key]
        else:
            first[image.key] = image
    hits = rt.cache.get_many(list(first))
    for key, leader in first.items():
        hit = hits.get(key)
        if hit is not None:
            leader.outcome, leader.cached = hit, True
    lookups = worker_metrics().cache_lookups
    if hits:
        lookups.labels(result="hit").inc(len(hits))
    if len(first) > len(hits):
        lookups.labels(result="miss").inc(len(first) - len(hits))


def _decode(rt: Runtime, image: _Image, spec) -> None:
    started = time.perf_counter()
    try:
        image.pixels = rt.decoder.model_input(image.data, spec)
    except ImageDecodeError as exc:
        image.outcome = ImageOutcome(error=str(exc))
    except Exception:
        log.exception("unexpected error decoding image %d (%s)", image.index, image.path)
        image.outcome = ImageOutcome(error=INTERNAL_ERROR)
    worker_metrics().stage("decode", time.perf_counter() - started)
    image.data = None  # the bytes are done with: a chunk of camera photos holds only pixels


def _groups(items: list, parts: int) -> list[list]:
    """``items`` in ``parts`` groups of neighbours: a pool task per group, not per image (each
    task costs a future, a queue hand-off and a thread wake-up)."""
    parts = max(1, min(len(items), parts))
    size = -(-len(items) // parts) if items else 1
    return [items[i : i + size] for i in range(0, len(items), size)]


def _decode_group(rt: Runtime, images: list[_Image], spec) -> None:
    for image in images:
        _decode(rt, image, spec)


def _classify_encoded(rt: Runtime, job: Job, classifier: TritonClassifier, image: _Image) -> None:
    stage = worker_metrics().stage
    data = image.data
    image.outcome = waiting_for_triton(
        rt, lambda: classify_bytes(classifier, data, job.top_k, rt.decoder, job.explain, stage)
    )
    image.data = None
    if image.key is not None and rt.cache is not None:
        rt.cache.put(image.key, image.outcome)


def _decode_and_classify(rt: Runtime, job: Job, classifier: TritonClassifier, leaders: list[_Image], spec) -> None:
    """Decode in the pool and send each request as soon as its images are decoded, so that
    the pool decodes the next request's images while one waits for Triton. Tasks enter the
    pool's queue as decode 1, decode 2, send 1, decode 3, send 2, ...: a send starts only
    after the decodes it waits for have left the queue, so the pool cannot deadlock."""
    size = classifier.request_size(rt.settings.images_per_request)
    batches = [leaders[i : i + size] for i in range(0, len(leaders), size)]

    def decodes(batch: list[_Image]) -> list:
        # Half as many groups as threads: the next request's decodes run beside this one's.
        return [rt.pool.submit(_decode_group, rt, group, spec) for group in _groups(batch, rt.settings.inflight // 2)]

    decoding = [decodes(batch) for batch in batches[:1]]
    sends = []
    for number, batch in enumerate(batches):
        if number + 1 < len(batches):
            decoding.append(decodes(batches[number + 1]))
        sends.append(rt.pool.submit(_send_when_decoded, rt, job, classifier, batch, decoding[number]))
    for send in sends:
        send.result()


def _send_when_decoded(rt: Runtime, job: Job, classifier: TritonClassifier, batch: list[_Image], decodes) -> None:
    for decode in decodes:
        decode.result()
    ready = [image for image in batch if image.outcome is None]
    if ready:
        _infer(rt, job, classifier, ready)


def _infer(rt: Runtime, job: Job, classifier: TritonClassifier, batch: list[_Image]) -> None:
    pixels = [image.pixels for image in batch]  # unstacked: to shared memory row by row
    started = time.perf_counter()

    def infer():
        try:
            return classifier.infer(pixels, explain=job.explain)
        except TritonUnavailable:
            raise  # waited out
        except TritonError as exc:  # refused: every image of the request hears why
            return ImageOutcome(error=f"inference failed: {exc}")

    answer = waiting_for_triton(rt, infer)
    per_image = (time.perf_counter() - started) / len(batch)
    worker_metrics().stage("inference", per_image, len(batch))
    if isinstance(answer, ImageOutcome):
        outcomes = [answer] * len(batch)
    else:
        outcomes = outcomes_of(answer.probabilities, answer.maps, job.top_k, classifier.metadata().classes)
    for image, outcome in zip(batch, outcomes, strict=True):
        image.pixels, image.outcome = None, outcome
    if rt.cache is not None:
        rt.cache.put_many([(image.key, image.outcome) for image in batch if image.key and image.outcome])


def _record(rt: Runtime, job: Job, images: list[_Image], started: float) -> Made:
    """The chunk's results in one Lua call (each index recorded once, as alone)."""
    results = []
    for image in images:
        outcome, cached = image.outcome, image.cached
        if image.twin_of is not None:
            outcome = image.twin_of.outcome
            cached = bool(outcome is not None and outcome.ok)
        if outcome is None:  # cannot happen; never record nothing
            outcome = ImageOutcome(error=INTERNAL_ERROR)
        results.append((image.index, outcome, cached))
    stamps = {image.index: Stamp(image.sha256) for image in images} if job.results_url else None
    stored = rt.store.record_kept(job.id, results, stamps)
    per_image = (time.perf_counter() - started) / max(1, len(images))
    done, made, twin_hits = Counter(), {}, 0
    for image, (_, outcome, cached), kept in zip(images, results, stored, strict=True):
        twin_hits += image.twin_of is not None and cached  # answered by its copy: the cache hit it is
        if kept is not None:
            made[image.index] = (image.path, kept)
            done[outcome.ok, cached] += 1
    worker_metrics().chunk_done(done, per_image, twin_hits)
    return made
