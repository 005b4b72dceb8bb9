"""PodiumClient: the Python API of a Podium gateway."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from podium.client.requests import job_options, manifest_requests, upload_requests
from podium.core.errors import InvalidArgument, PodiumError, Status, Unavailable, error_for
from podium.core.jobs import JobOptions
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from podium.core.proto.options import to_spec
from podium.core.proto.status import read_trailers, status_of

if TYPE_CHECKING:
    import pyarrow as pa

MAX_MESSAGE_BYTES = 32 * 1024**2
DEFAULT_TIMEOUT_S = 30.0
# Streams reopen for this long while the gateway is unavailable (e.g. being restarted).
DEFAULT_RECONNECT_S = 120.0
RECONNECT_FIRST_DELAY_S = 0.5
RECONNECT_MAX_DELAY_S = 5.0


def _converted(exc: grpc.RpcError, gateway: str) -> PodiumError:
    """A failed call as the PodiumError of its status (NotFound, Unavailable, ...), with the
    hint the gateway wrote; "the gateway is unavailable" only when it did not answer itself."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or code.name
    status = status_of(code)
    answered, hint = read_trailers(exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else ())
    if answered:  # the gateway's own refusal: Redis or Triton away, a job not found, ...
        return error_for(status, details, hint=hint)
    if status is Status.UNAVAILABLE:
        return error_for(
            status,
            f"the gateway at {gateway} is unavailable: {details}",
            hint="is `podium up` running, and is --gateway (or $PODIUM_GATEWAY) right?",
        )
    return error_for(status, details)


class PodiumClient:
    def __init__(
        self,
        gateway: str,
        api_key: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        reconnect_s: float = DEFAULT_RECONNECT_S,
        tls: bool = False,
        tls_ca_file: str = "",
    ) -> None:
        self.gateway = gateway
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self._metadata = (("x-api-key", api_key),) if api_key else ()
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls or tls_ca_file:
            roots = Path(tls_ca_file).read_bytes() if tls_ca_file else None
            self._channel = grpc.secure_channel(gateway, grpc.ssl_channel_credentials(roots), options=options)
        else:
            self._channel = grpc.insecure_channel(gateway, options=options)
        self._stub = pb_grpc.PodiumStub(self._channel)
        self._owns_channel = True

    def with_api_key(self, api_key: str) -> Self:
        """A client that calls as ``api_key`` over this one's channel; closing it closes nothing
        (the web page serves every visitor over one channel, and a visitor's calls never end
        because another one came or went)."""
        other = copy.copy(self)
        other._metadata = (("x-api-key", api_key),) if api_key else ()
        other._owns_channel = False
        return other

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Callable, request, timeout_s: float | None = None):
        try:
            return method(request, metadata=self._metadata, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def _reconnecting(self, open_stream: Callable[[], Iterator]) -> Iterator:
        """Yield from a server stream, reopening it while the gateway is unavailable
        (restarting, Redis blip) for up to reconnect_s."""
        deadline, delay = None, RECONNECT_FIRST_DELAY_S
        while True:
            try:
                for item in open_stream():
                    deadline, delay = None, RECONNECT_FIRST_DELAY_S
                    yield item
                return
            except grpc.RpcError as exc:
                now = time.monotonic()
                deadline = deadline or now + self.reconnect_s
                if exc.code() != grpc.StatusCode.UNAVAILABLE or now > deadline:
                    raise _converted(exc, self.gateway) from None
                time.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    # --- jobs ------------------------------------------------------------------------

    def submit_folder(
        self,
        folder: Path | str,
        on_file: Callable[[str, int], None] | None = None,
        options: JobOptions | None = None,
        **fields: object,
    ) -> pb.Job:
        """Upload every non-hidden file under ``folder`` as a job, streaming file by file.

        The job's options are ``options`` or its fields as keywords (``top_k``, ``name``,
        ``model`` ("NAME" or "NAME:VERSION"), ``explain``, ...; ``JobOptions``). ``source``
        defaults to the folder's absolute path, so that ``podium results --heatmaps`` finds
        the images again."""
        folder = Path(folder)
        if not folder.is_dir():
            raise InvalidArgument(f"{folder} is not a folder")
        spec = job_options(options, fields)
        if not spec.source:
            spec = dataclasses.replace(spec, source=str(folder.resolve()))
        job_key = spec.job_key
        deadline, delay = time.monotonic() + self.reconnect_s, RECONNECT_FIRST_DELAY_S
        while True:
            try:
                return self._upload(folder, spec, on_file, job_key)
            except grpc.RpcError as exc:
                # A keyed submit is idempotent: through a gateway restart, or while the gateway
                # lets go of an earlier stream of the same key, it tries again and resumes.
                if job_key and exc.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_DELAY_S)
                    continue
                if exc.code() == grpc.StatusCode.CANCELLED:
                    raise Unavailable(
                        "the gateway ended the upload: it received nothing for too long, or it is shutting down",
                        hint="submit again (with --job-key KEY it resumes); if the folder is on slow storage, "
                        "copy it somewhere faster first",
                    ) from None
                raise _converted(exc, self.gateway) from None

    def _upload(
        self, folder: Path, spec: JobOptions, on_file: Callable[[str, int], None] | None, job_key: str
    ) -> pb.Job:
        """One SubmitUpload; with a job key, of the files the key's job does not hold yet."""
        held: set[str] = set()
        if job_key:
            existing = self._found(job_key)
            if existing is not None and existing.state != pb.JOB_STATE_UPLOADING:
                return existing  # submitted with this key before, upload finished: the same job
            if existing is not None:
                held = set(self._paths(existing.id))
        return self._stub.SubmitUpload(upload_requests(folder, to_spec(spec), on_file, held), metadata=self._metadata)

    def submit_chunks(
        self, chunks: Iterable[pb.FileChunk], options: JobOptions | None = None, **fields: object
    ) -> pb.Job:
        """Upload files given as a stream of chunks (each file's chunks in a row, the last with
        ``last=True``), e.g. as they arrive from a browser; options as for submit_folder."""
        requests = itertools.chain(
            (pb.UploadRequest(spec=to_spec(job_options(options, fields))),),
            (pb.UploadRequest(file=chunk) for chunk in chunks),
        )
        try:
            return self._stub.SubmitUpload(requests, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def submit_path(self, path: str, options: JobOptions | None = None, **fields: object) -> pb.Job:
        """Submit a folder on the workers' storage (inside the gateway's data roots) or an
        s3:// prefix; options as for submit_folder."""
        request = pb.SubmitPathRequest(path=path, spec=to_spec(job_options(options, fields)))
        return self._call(self._stub.SubmitPath, request, timeout_s=max(self.timeout_s, 600))

    def submit_manifest(self, paths: Iterable[str], options: JobOptions | None = None, **fields: object) -> pb.Job:
        """Submit a list of images, each an absolute path under the gateway's data roots or an
        s3:// URL; results keep the list's order. Options as for submit_folder."""
        requests = manifest_requests(to_spec(job_options(options, fields)), paths)
        try:
            return self._stub.SubmitManifest(requests, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def find_job(self, job_key: str) -> pb.Job | None:
        """The caller's job submitted with ``job_key``, or None."""
        try:
            return self._found(job_key)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def job_files(self, job_id: str) -> Iterator[str]:
        """Every path the job holds, in job order."""
        try:
            yield from self._paths(job_id)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def _found(self, job_key: str) -> pb.Job | None:
        try:
            return self._stub.FindJob(
                pb.FindJobRequest(job_key=job_key), metadata=self._metadata, timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def _paths(self, job_id: str) -> Iterator[str]:
        request = pb.ListJobFilesRequest(job_id=job_id)
        for batch in self._stub.ListJobFiles(request, metadata=self._metadata, timeout=max(self.timeout_s, 600)):
            yield from batch.paths

    def get_job(self, job_id: str) -> pb.Job:
        return self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def watch(self, job_id: str) -> Iterator[pb.Job]:
        """The job at each change, until it ends; survives a gateway restart."""
        request = pb.WatchJobRequest(job_id=job_id)
        return self._reconnecting(lambda: self._stub.WatchJob(request, metadata=self._metadata))

    def subscribe(self, job_id: str) -> JobSubscription:
        """The job at each change, until it ends or ``cancel()`` is called (from any thread);
        no reconnect: for a caller that reconnects itself (a browser's EventSource)."""
        call = self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self._metadata)
        return JobSubscription(call, self.gateway)

    def results(self, job_id: str, start_index: int = 0, follow: bool = False) -> Iterator[pb.ImageResult]:
        """Results in image order; after a reconnect the stream resumes where it broke off."""
        next_index = start_index

        def open_stream() -> Iterator[pb.ImageResult]:
            nonlocal next_index
            request = pb.GetResultsRequest(job_id=job_id, start_index=next_index, follow=follow)
            for result in self._stub.GetResults(request, metadata=self._metadata):
                next_index = result.index + 1
                yield result

        return self._reconnecting(open_stream)

    def result_batches(self, job_id: str, start_index: int = 0) -> Iterator[pa.RecordBatch]:
        """A completed job's results in bulk, as Arrow record batches of the result files'
        columns (needs pyarrow); FailedPrecondition for a job whose answers are not all in
        result files: read those with ``results``. Resumes after a reconnect."""
        import pyarrow as pa

        next_index = start_index

        def open_stream() -> Iterator[pa.RecordBatch]:
            nonlocal next_index
            request = pb.GetResultsRequest(job_id=job_id, start_index=next_index)
            for part in self._stub.GetResultTable(request, metadata=self._metadata):
                for batch in pa.ipc.open_stream(part.arrow_stream):
                    if batch.num_rows:
                        next_index = batch.column(0)[-1].as_py() + 1
                        yield batch

        return self._reconnecting(open_stream)

    def cancel(self, job_id: str) -> pb.Job:
        return self._call(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id))

    def delete(self, job_id: str) -> None:
        """Remove the job and all its data from the gateway (cancelling it first if it runs)."""
        self._call(self._stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id))

    def list_jobs(
        self, state: int = pb.JOB_STATE_UNSPECIFIED, name: str = "", page_size: int = 100
    ) -> Iterator[pb.Job]:
        """The caller's jobs, newest first, page by page as they are read; ``state`` a JobState
        to keep only those, ``name`` text their name contains."""
        token = ""
        while True:
            request = pb.ListJobsRequest(page_size=page_size, page_token=token, state=state, name=name)
            page = self._call(self._stub.ListJobs, request)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def classes(self, model: str = "") -> pb.ListClassesResponse:
        """The classes of ``model`` ("NAME" or "NAME:VERSION"; "": the gateway's default) and its version."""
        return self._call(self._stub.ListClasses, pb.ListClassesRequest(model=model))

    def serving(self) -> bool:
        """True when the gateway's health service says SERVING (it reaches Redis)."""
        request = health_pb2.HealthCheckRequest()
        try:
            status = health_pb2_grpc.HealthStub(self._channel).Check(request, timeout=self.timeout_s).status
        except grpc.RpcError:
            return False
        return status == health_pb2.HealthCheckResponse.SERVING

    def status(self) -> pb.GetStatusResponse:
        """Whether Redis, the default model and the workers answer, as the gateway sees them."""
        return self._call(self._stub.GetStatus, pb.GetStatusRequest())

    def classify_images(
        self, images: list[tuple[str, bytes]], top_k: int = 0, model: str = "", explain: bool = False
    ) -> list[pb.ImageResult]:
        """Classify a few encoded images, each ``(name, bytes)``, synchronously."""
        request = pb.ClassifyRequest(
            images=[pb.ClassifyImage(name=name, data=data) for name, data in images],
            top_k=top_k,
            model=model,
            explain=explain,
        )
        return list(self._call(self._stub.Classify, request).results)

    def classify(
        self, files: list[Path], top_k: int = 0, model: str = "", explain: bool = False
    ) -> list[pb.ImageResult]:
        """Classify a few files synchronously; ``explain`` adds each top-1 class's map."""
        images = [(str(path), Path(path).read_bytes()) for path in files]
        return self.classify_images(images, top_k=top_k, model=model, explain=explain)


class JobSubscription:
    """One WatchJob stream that another thread may cancel."""

    def __init__(self, call, gateway: str) -> None:
        self._call = call
        self._gateway = gateway

    def __iter__(self) -> Iterator[pb.Job]:
        try:
            yield from self._call
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise _converted(exc, self._gateway) from None

    def cancel(self) -> None:
        self._call.cancel()
