"""JobService: what the gateway does, in domain terms (no protobuf here)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from gateway.paths import resolve_under_roots
from gateway.settings import GatewaySettings
from gateway.uploads import FileChunk, UploadAssembler
from inference import TritonClassifier, TritonUnavailable, classify_bytes
from jobs import ImageOutcome, ImageResult, Job, JobMode, JobState, walk_files
from jobstore import ChunkQueue, JobStore
from modelmeta import ModelMetadata

log = logging.getLogger(__name__)

WATCH_POLL_S = 0.2
RESULTS_PAGE = 500
_PATH_BATCH = 1000
CANCELLED_ERROR = "job cancelled before this image was processed"


def _unprocessed_reason(job: Job) -> str:
    return (
        CANCELLED_ERROR
        if job.state is JobState.CANCELLED
        else f"job failed before this image was processed: {job.error}"
    )


class JobService:
    def __init__(
        self,
        settings: GatewaySettings,
        store: JobStore,
        queue: ChunkQueue,
        classifier: TritonClassifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self._classifier = classifier  # created on first use, unless given (tests)
        self._decoder = settings.decoder()  # Classify decodes within the same limits as workers
        self._classifier_lock = threading.Lock()

    # --- submitting ------------------------------------------------------------------

    def submit_upload(self, top_k: int, name: str, chunks: Iterable[FileChunk]) -> Job:
        job = self._create(JobMode.UPLOAD, top_k, name)
        assembler = UploadAssembler(self.store, job.id, self.settings, self.queue.pump)
        try:
            for chunk in chunks:
                assembler.add_chunk(chunk)
            assembler.finish()
        except BaseException as exc:
            self.store.fail(job.id, f"upload did not complete: {getattr(exc, 'message', None) or type(exc).__name__}")
            raise
        return self._start(job.id)

    def submit_path(self, path: str, top_k: int, name: str) -> Job:
        folder = resolve_under_roots(path, self.settings.data_root_list())
        job = self._create(JobMode.PATH, top_k, name, root=folder)
        try:
            batch: list[str] = []
            count = 0
            for rel in walk_files(folder):
                batch.append(rel)
                if count + len(batch) > self.settings.max_files_per_job:
                    raise ResourceExhausted(
                        f"{path!r} holds more than {self.settings.max_files_per_job:,} files; submit sub-folders"
                    )
                if len(batch) >= _PATH_BATCH:
                    self.store.append_files(job.id, count, batch)
                    count += len(batch)
                    batch = []
                    self.queue.pump(job.id)
            self.store.append_files(job.id, count, batch)
        except BaseException as exc:
            self.store.fail(job.id, f"listing the folder failed: {getattr(exc, 'message', None) or type(exc).__name__}")
            raise
        return self._start(job.id)

    def _create(self, mode: JobMode, top_k: int, name: str, root: str = "") -> Job:
        top_k = top_k or self.settings.default_top_k
        if not 1 <= top_k <= 1000:
            raise InvalidArgument(f"top_k must be between 1 and 1000, not {top_k}")
        if len(name) > 200:
            raise InvalidArgument("job name must be at most 200 characters")
        if self.store.active_jobs() >= self.settings.max_active_jobs:
            raise ResourceExhausted(
                f"the gateway already runs {self.settings.max_active_jobs} jobs; try again when some have finished"
            )
        return self.store.create(mode=mode, top_k=top_k, chunk_size=self.settings.chunk_size, name=name, root=root)

    def _start(self, job_id: str) -> Job:
        self.store.finish_upload(job_id)
        self.queue.pump(job_id)
        return self.get(job_id)

    # --- reading ---------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id) if job_id else None
        if job is None:
            raise NotFound(f"no job {job_id!r} (unknown, or expired after {self.settings.result_ttl_s} s)")
        return job

    def watch(self, job_id: str, is_active: Callable[[], bool]) -> Iterator[Job]:
        """Yield the job at each change, ending after its first terminal state."""
        self.get(job_id)
        last = None
        with self.store.end_signal(job_id) as ended:
            while is_active():
                job = self.get(job_id)
                seen = (job.state, job.total, job.succeeded, job.failed)
                if seen != last:
                    last = seen
                    yield job
                if job.state.terminal:
                    return
                ended.wait(WATCH_POLL_S)

    def results(self, job_id: str, start: int, follow: bool, is_active: Callable[[], bool]) -> Iterator[ImageResult]:
        """Finished images' results in image order from ``start``.

        Without ``follow``, unfinished images are skipped; with it, the stream waits for
        each in turn. Once a job has ended, every image has exactly one result: images
        that a cancel or failure left unprocessed get an error result."""
        if start < 0:
            raise InvalidArgument("start_index must be >= 0")
        job = self.get(job_id)
        with self.store.end_signal(job_id) as ended:
            yield from self._results(job, start, follow, is_active, ended)

    def _results(
        self, job: Job, start: int, follow: bool, is_active: Callable[[], bool], ended
    ) -> Iterator[ImageResult]:
        job_id = job.id
        index = start
        while is_active():
            # The job is read before the page: if it had ended, the page is final.
            page = self.store.results(job_id, index, RESULTS_PAGE)
            waiting = False
            for path, outcome in page:
                if outcome is None:
                    if job.state.terminal:
                        outcome = ImageOutcome(error=_unprocessed_reason(job))
                    elif follow:
                        waiting = True
                        break
                    else:
                        index += 1
                        continue
                yield ImageResult(index, path, outcome)
                index += 1
            if not waiting and page:
                continue
            if not waiting and (job.state.terminal or not follow):
                return
            ended.wait(WATCH_POLL_S)
            job = self.get(job_id)

    def cancel(self, job_id: str) -> Job:
        self.get(job_id)
        self.store.cancel(job_id)
        return self.get(job_id)

    # --- the model -------------------------------------------------------------------

    def classifier(self) -> TritonClassifier:
        with self._classifier_lock:
            if self._classifier is None:
                self._classifier = TritonClassifier(
                    self.settings.triton_url, self.settings.model_name, self.settings.triton_timeout_s
                )
            return self._classifier

    def model_metadata(self) -> ModelMetadata:
        try:
            return self.classifier().metadata()
        except TritonUnavailable as exc:
            raise Unavailable(f"the inference server is not available: {exc}") from exc

    def classify(self, images: list[tuple[str, bytes]], top_k: int) -> list[ImageOutcome]:
        if not images:
            raise InvalidArgument("send at least one image")
        if len(images) > self.settings.classify_max_images:
            raise InvalidArgument(
                f"Classify takes at most {self.settings.classify_max_images} images; submit a job for more"
            )
        top_k = top_k or self.settings.default_top_k
        if not 1 <= top_k <= 1000:
            raise InvalidArgument(f"top_k must be between 1 and 1000, not {top_k}")
        self.model_metadata()
        try:
            return [classify_bytes(self.classifier(), data, top_k, self._decoder) for _, data in images]
        except TritonUnavailable as exc:
            raise Unavailable(f"the inference server is not available: {exc}") from exc
