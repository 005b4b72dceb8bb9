"""Upload jobs: a client's stream of files into a job, resumable with a job key.

A mixin of ``JobService`` (``gateway.service``), which supplies the store, the settings,
the queue and the steps every job shares (``_create``, ``_start``, ``get``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from gateway.access import Caller
from gateway.uploads import FileChunk, UploadAssembler, UploadJobEnded, upload_lease
from podium.core.errors import InvalidArgument, NotFound, Unavailable
from podium.core.jobs import Job, JobMode, JobOptions, JobState

log = logging.getLogger(__name__)

MAX_JOB_KEY_CHARS = 200
# A gateway renews an upload's lease as files arrive (at most once a second: a round trip
# per file cost a quarter of the gateway's CPU in upload mode); this much beyond the idle
# limit lets it go.
_UPLOAD_LEASE_MARGIN_S = 30
_LEASE_RENEWAL_S = 1.0


class UploadJobs:
    def submit_upload(
        self,
        options: JobOptions,
        caller: Caller,
        chunks: Iterable[FileChunk],
        keepalive: Callable[[], object] = lambda: None,
    ) -> Job:
        """``keepalive`` is called while backpressure pauses the stream (the stream's idle watch)."""
        if options.job_key:
            return self._submit_keyed_upload(options, caller, chunks, keepalive)
        job = self._create(JobMode.UPLOAD, options, caller)
        lease, lease_s = upload_lease(job.id), self.settings.upload_idle_s + _UPLOAD_LEASE_MARGIN_S
        self.store.claim(lease, lease_s)  # the reconciler leaves an upload in hand alone
        assembler = UploadAssembler(
            self.store,
            job.id,
            self.settings,
            self.queue.pump,
            on_file=_at_most_every(_LEASE_RENEWAL_S, lambda: self.store.renew_claim(lease, lease_s)),
            on_wait=lambda: (self.store.renew_claim(lease, lease_s), keepalive()),
        )

        def broke(exc: BaseException) -> None:
            self.store.fail(job.id, f"upload did not complete: {getattr(exc, 'message', None) or type(exc).__name__}")

        try:
            return self._receive(assembler, chunks, broke)
        finally:
            self.store.release_claim(lease)

    def _receive(
        self, assembler: UploadAssembler, chunks: Iterable[FileChunk], broke: Callable[[BaseException], None]
    ) -> Job:
        """Stream the files into the job and start it; ``broke`` hears a stream that broke off."""
        try:
            for chunk in chunks:
                assembler.add_chunk(chunk)
            assembler.finish()
        except UploadJobEnded:
            return self._stopped_by_its_limit(assembler.job_id)
        except BaseException as exc:
            broke(exc)
            raise
        return self._start(assembler.job_id)

    def _submit_keyed_upload(
        self, options: JobOptions, caller: Caller, chunks: Iterable[FileChunk], keepalive: Callable[[], object]
    ) -> Job:
        """An upload that may resume: a broken stream leaves the job uploading (the reconciler
        fails it after PODIUM_UPLOAD_STALL_S of silence), and a submit with the same key adds
        the files it does not hold yet. A job whose upload finished is returned as it is."""
        job = self._job_of_key(options, caller)
        if job.state is not JobState.UPLOADING:
            return job
        lease = upload_lease(job.id)
        lease_s = self.settings.upload_idle_s + _UPLOAD_LEASE_MARGIN_S
        if not self.store.claim(lease, lease_s):
            # Unavailable, not an error of the request: a resume that arrives while the gateway
            # still lets go of the broken stream tries again (the client does, for a while).
            raise Unavailable(
                f"job {job.id} (key {options.job_key!r}) is being uploaded by another `podium submit`",
                hint="wait for it to finish, or stop it and submit again",
            )
        assembler = UploadAssembler(
            self.store,
            job.id,
            self.settings,
            self.queue.pump,
            count=job.total,
            already=frozenset(self.store.all_files(job.id)),
            on_file=_at_most_every(_LEASE_RENEWAL_S, lambda: self.store.renew_claim(lease, lease_s)),
            on_wait=lambda: (self.store.renew_claim(lease, lease_s), keepalive()),
        )
        try:
            return self._receive(assembler, chunks, lambda exc: self._keep_whole_files(assembler, job.id))
        finally:
            self.store.release_claim(lease)

    def _stopped_by_its_limit(self, job_id: str) -> Job:
        """A job its own --max-failed stopped during the upload is the answer (its error says
        why); one cancelled or deleted meanwhile ends the upload as FAILED_PRECONDITION."""
        job = self.store.get(job_id)
        if job is not None and job.state is JobState.FAILED and job.max_failed:
            return job
        raise UploadJobEnded(
            f"job {job_id} ended during its upload ({job.state.value if job else 'deleted or expired'})"
        )

    @staticmethod
    def _keep_whole_files(assembler: UploadAssembler, job_id: str) -> None:
        """The stream broke: the files received whole are kept (a resume skips them)."""
        try:
            assembler.flush()
        except Exception:
            log.warning("job %s: files received before the break could not be kept", job_id, exc_info=True)
        log.info("job %s: keyed upload interrupted after %d files; the same key resumes it", job_id, assembler.count)

    def _job_of_key(self, options: JobOptions, caller: Caller) -> Job:
        """The job the caller's key is bound to, or a new one bound to it."""
        if len(options.job_key) > MAX_JOB_KEY_CHARS:
            raise InvalidArgument(f"job key must be at most {MAX_JOB_KEY_CHARS} characters")
        bound = self.store.job_for_key(caller.owner, options.job_key)
        if bound is not None:
            job = self.store.get(bound)
            if job is not None:
                return job
            self.store.unbind_job_key(caller.owner, options.job_key, bound)  # expired or deleted
        job = self._create(JobMode.UPLOAD, options, caller)
        ttl_s = self.settings.result_ttl_s + int(self.settings.upload_stall_s)
        winner = self.store.bind_job_key(caller.owner, options.job_key, job.id, ttl_s)
        if winner != job.id:  # a concurrent submit with the same key bound first
            self.store.delete(job.id)
            return self.get(winner, caller)
        return job

    def find(self, job_key: str, caller: Caller) -> Job:
        """The caller's job submitted with ``job_key``."""
        bound = self.store.job_for_key(caller.owner, job_key) if job_key else None
        job = self.store.get(bound) if bound else None
        if job is None or not caller.may_see(job.owner):
            raise NotFound(f"no job with the key {job_key!r}")
        return job


def _at_most_every(seconds: float, call: Callable[[], object]) -> Callable[[], None]:
    """``call``, skipped when the last one was less than ``seconds`` ago."""
    last = [float("-inf")]

    def maybe() -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            call()

    return maybe
