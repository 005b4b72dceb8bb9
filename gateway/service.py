"""JobService: what the gateway does with jobs, in domain terms (no protobuf here)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from gateway.access import Caller
from gateway.delta import DeltaPlan, checked_delta, find_baseline, manifest_entry
from gateway.job_reading import JobReading
from gateway.model_service import ModelService, checked_top_k, require_maps
from gateway.paths import resolve_under_roots
from gateway.room import Room
from gateway.settings import GatewaySettings
from gateway.upload_jobs import UploadJobs
from gateway.uploads import MAX_PATH_BYTES, UPLOAD_CHUNKS_IN_PENDING
from gateway.webhooks import checked_webhook
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from podium.core.jobs import (
    FailureLimit,
    FileEntry,
    ImageOutcome,
    Job,
    JobMode,
    JobOptions,
    JobState,
    S3Url,
    is_s3_url,
    walk_entries,
)
from podium.core.modelmeta import ModelRef
from podium.stores.jobstore import ChunkQueue, JobStore, Stamp
from podium.stores.jobstore.chunk_rates import ChunkRates, chunk_size_for
from podium.stores.jobstore.schema import delta_key_name
from podium.stores.objectstore import ObjectStore
from podium.stores.resultsink import compact_quietly, open_sink

log = logging.getLogger(__name__)

_PATH_BATCH = 1000
MAX_NAME_CHARS = 200
MAX_SOURCE_CHARS = 1000
# A keyed upload holds this lease while it streams, renewed with each file.


def _short(entry: FileEntry) -> FileEntry:
    if len(entry.path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return FileEntry(entry.path[:200] + "…", f"path longer than {MAX_PATH_BYTES} bytes; not read")
    return entry


class JobService(UploadJobs, JobReading):
    """Jobs: submitted (uploads in ``gateway.upload_jobs``), read and watched (``gateway.job_reading``),
    cancelled, deleted."""

    def __init__(
        self,
        settings: GatewaySettings,
        store: JobStore,
        queue: ChunkQueue,
        models: ModelService,
        on_submitted: Callable[[JobMode], None] = lambda mode: None,
        objects: ObjectStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.models = models
        self.objects = objects or ObjectStore()
        self._on_submitted = on_submitted
        self._webhook_policy = settings.webhook_policy()
        self._room = Room(settings, store)

    # --- submitting ------------------------------------------------------------------

    def submit_path(self, path: str, options: JobOptions, caller: Caller) -> Job:
        """A folder under a data root, or an s3:// prefix in a bucket the gateway may read."""
        if is_s3_url(path):
            return self._submit_s3(S3Url.parse(path), options, caller)
        folder = resolve_under_roots(path, self.settings.data_root_list())
        job = self._create(JobMode.PATH, options, caller, root=folder)
        plan = self._plan(job)
        entries = walk_entries(folder, versions=plan.active)
        self._listing(job.id, "listing the folder", lambda: self._append_all(job.id, plan.split(entries), repr(path)))
        return self._start(job.id, plan)

    def _submit_s3(self, url: S3Url, options: JobOptions, caller: Caller) -> Job:
        url.allowed_in(self.settings.s3_bucket_list())
        root = f"s3://{url.bucket}/{url.prefix}"
        job = self._create(JobMode.S3, options, caller, root=root)
        plan = self._plan(job)
        entries = (
            FileEntry(item.path, self._size_error(item.size), f"{item.etag}:{item.size}" if item.etag else "")
            for item in self.objects.list_images(url)
        )
        self._listing(job.id, f"listing {root}", lambda: self._append_all(job.id, plan.split(entries), root))
        return self._start(job.id, plan)

    def submit_manifest(self, lines: Iterable[str], options: JobOptions, caller: Caller) -> Job:
        """One image per line, in the manifest's order; a line the gateway may not read gets an
        error result (the job goes on)."""
        roots, buckets = self.settings.data_root_list(), self.settings.s3_bucket_list()
        job = self._create(JobMode.MANIFEST, options, caller)
        plan = self._plan(job)
        entries = (manifest_entry(line, roots, buckets, versions=plan.active) for line in lines)
        self._listing(
            job.id, "reading the manifest", lambda: self._append_all(job.id, plan.split(entries), "the manifest")
        )
        return self._start(job.id, plan)

    def _size_error(self, size: int) -> str | None:
        limit = self.settings.max_file_bytes
        return f"object is {size:,} bytes, more than the limit of {limit:,}" if size > limit else None

    def _listing(self, job_id: str, doing: str, list_all: Callable[[], object]) -> None:
        try:
            list_all()
        except BaseException as exc:
            self.store.fail(job_id, f"{doing} failed: {getattr(exc, 'message', None) or type(exc).__name__}")
            raise

    def _append_all(self, job_id: str, entries: Iterable[FileEntry], shown: str, start: int = 0) -> int:
        batch: list[FileEntry] = []
        count = start
        for entry in entries:
            batch.append(_short(entry))
            if count + len(batch) > self.settings.max_files_per_job:
                raise ResourceExhausted(
                    f"{shown} holds more than {self.settings.max_files_per_job:,} files",
                    hint="submit it in parts: sub-folders, shorter prefixes or manifests",
                )
            if len(batch) >= _PATH_BATCH:
                count = self._append_entries(job_id, count, batch)
                batch = []
        self._append_entries(job_id, count, batch)
        return count + len(batch)

    def _append_entries(self, job_id: str, start: int, entries: list[FileEntry]) -> int:
        job = self.store.get(job_id)
        if job is not None:  # room is checked where it is spent: a listing may be millions of paths
            self._room.for_paths(job.owner, len(entries))
        # An entry's error is recorded before its path is listed: its chunk cannot run before
        # (with a results sink, a record after the chunk's file landed would be refused).
        for offset, entry in enumerate(entries):
            if entry.error:
                self.store.record(job_id, start + offset, ImageOutcome(error=entry.error), stamp=Stamp())
        if not self.store.append_files(job_id, start, [entry.path for entry in entries]):
            raise FailedPrecondition(f"job {job_id} ended while its folder was listed")
        self.queue.pump(job_id)
        return start + len(entries)

    def _create(self, mode: JobMode, options: JobOptions, caller: Caller, root: str = "") -> Job:
        if options.job_key and mode is not JobMode.UPLOAD:
            raise InvalidArgument("a job key makes an upload resumable; path, s3 and manifest jobs take none")
        checked_delta(options.incremental, mode, self.settings.results_url)
        top_k = checked_top_k(options.top_k, self.settings.default_top_k)
        if len(options.name) > MAX_NAME_CHARS:
            raise InvalidArgument(f"job name must be at most {MAX_NAME_CHARS} characters")
        if len(options.source) > MAX_SOURCE_CHARS:
            raise InvalidArgument(f"job source must be at most {MAX_SOURCE_CHARS} characters")
        webhook = checked_webhook(options.webhook, self._webhook_policy)
        max_failed = FailureLimit.parse(options.max_failed).text
        self._room.for_new_job(caller.owner)
        model = self._model_of(options)
        resolved = dataclasses.replace(
            options, top_k=top_k, webhook=webhook, max_failed=max_failed, source=root or options.source
        )
        job = self.store.create(
            mode=mode,
            **self._chunk_sizing(mode, model.name),
            options=resolved,
            root=root,
            owner=caller.owner,
            model_name=model.name,
            model_version=model.version,
            results_url=self.settings.results_url,
            delta_key=delta_key_name(caller.owner, options.incremental) if options.incremental else "",
        )
        self._on_submitted(mode)
        return job

    def _chunk_sizing(self, mode: JobMode, model_name: str) -> dict[str, int | float]:
        """Sized by time: a job's first chunks from the rate the workers measured so far, the
        later ones growing once they measure more (on a fresh cluster, the first job's too).
        An upload's chunk is sent once its files arrived: it grows to a quarter of the
        unprocessed files the upload may hold at most (PODIUM_MAX_PENDING_UPLOADS), so that the
        upload streams on while chunks are processed (and one held back by bytes sends what
        arrived, ``UploadAssembler``)."""
        settings = self.settings
        if settings.chunk_seconds <= 0:
            return {"chunk_size": settings.chunk_size}
        most = settings.max_chunk_size
        if mode is JobMode.UPLOAD:
            most = max(settings.chunk_size, min(most, settings.max_pending_uploads // UPLOAD_CHUNKS_IN_PENDING))
        rate = ChunkRates(self.store.client).rate(model_name)
        return {
            "chunk_size": chunk_size_for(rate, settings.chunk_seconds, settings.chunk_size, most),
            "max_chunk_size": most,
            "chunk_seconds": settings.chunk_seconds,
        }

    def _model_of(self, options: JobOptions) -> ModelRef:
        """The job's model, version pinned; NotFound before any image is read. A job of the
        default model is accepted while Triton is away (its workers ask for the newest then)."""
        try:
            model, metadata = self.models.resolve(options.model)
        except Unavailable:
            if options.model:
                raise
            log.warning("Triton is unavailable: a job of the default model is accepted without a pinned version")
            return ModelRef(self.settings.model_name)
        if options.explain:
            require_maps(model, metadata)
        return model

    def _plan(self, job: Job) -> DeltaPlan:
        """What a delta job carries over (a plan that passes every entry, for any other job)."""
        return DeltaPlan(bool(job.incremental), find_baseline(self.store, job) if job.incremental else None)

    def _start(self, job_id: str, plan: DeltaPlan | None = None) -> Job:
        if plan is not None and plan.active:
            self._listing(job_id, "carrying over unchanged results", lambda: self._carry(job_id, plan))
        self.store.finish_upload(job_id)
        self.queue.pump(job_id)
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} vanished while it was submitted (deleted?)")
        if job.state is JobState.COMPLETED and job.results_url and compact_quietly(open_sink(job.results_url), job_id):
            self.store.compacted(job_id)  # nothing to classify: no worker will
        return job

    def _carry(self, job_id: str, plan: DeltaPlan) -> None:
        missing = plan.carry(open_sink(self.settings.results_url), job_id)
        if missing:
            self._append_all(job_id, missing, "the delta job", start=len(plan.classified))
        self.store.set_unchanged(job_id, len(plan.unchanged))

    # --- ending ----------------------------------------------------------------------

    def cancel(self, job_id: str, caller: Caller) -> Job:
        self.get(job_id, caller)
        self.store.cancel(job_id)
        return self.get(job_id, caller)

    def delete(self, job_id: str, caller: Caller) -> None:
        """Remove the job and everything of it from Redis and its result files (cancelling it
        first if it runs; a chunk still running removes the file it writes once it sees the job gone)."""
        job = self.get(job_id, caller)
        sink = open_sink(job.results_url) if job.results_url else None
        if sink is not None:  # first: a sink that is away fails the call before anything is gone
            sink.remove_job(job_id)
        self.store.delete(job_id)
        if sink is not None:  # and after: a chunk that was running may have written its file
            sink.remove_job(job_id)
        log.info("job %s deleted", job_id)
