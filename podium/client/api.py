"""PodiumClient: the Python API of a Podium gateway."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from podium.client.calls import (
    DEFAULT_RECONNECT_S,
    DEFAULT_TIMEOUT_S,
    MAX_MESSAGE_BYTES,
    RECONNECT_FIRST_DELAY_S,
    RECONNECT_MAX_DELAY_S,
    _converted,
)
from podium.client.records import ImageResult, Job, ModelClasses, ServiceStatus, from_message
from podium.client.submitting import JobSubmissions
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    import pyarrow as pa


class PodiumClient(JobSubmissions):
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

    def get_job(self, job_id: str) -> Job:
        return from_message(Job, self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id)))

    def watch(self, job_id: str) -> Iterator[Job]:
        """The job at each change, until it ends; survives a gateway restart."""
        request = pb.WatchJobRequest(job_id=job_id)
        updates = self._reconnecting(lambda: self._stub.WatchJob(request, metadata=self._metadata))
        return (from_message(Job, update) for update in updates)

    def subscribe(self, job_id: str) -> JobSubscription:
        """The job at each change, until it ends or ``cancel()`` is called (from any thread);
        no reconnect: for a caller that reconnects itself (a browser's EventSource)."""
        call = self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self._metadata)
        return JobSubscription(call, self.gateway)

    def results(self, job_id: str, start_index: int = 0, follow: bool = False) -> Iterator[ImageResult]:
        """Results in image order; after a reconnect the stream resumes where it broke off."""
        next_index = start_index

        def open_stream() -> Iterator[ImageResult]:
            nonlocal next_index
            request = pb.GetResultsRequest(job_id=job_id, start_index=next_index, follow=follow)
            for result in self._stub.GetResults(request, metadata=self._metadata):
                next_index = result.index + 1
                yield from_message(ImageResult, result)

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

    def cancel(self, job_id: str) -> Job:
        return from_message(Job, self._call(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id)))

    def delete(self, job_id: str) -> None:
        """Remove the job and all its data from the gateway (cancelling it first if it runs)."""
        self._call(self._stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id))

    def list_jobs(self, state: int = pb.JOB_STATE_UNSPECIFIED, name: str = "", page_size: int = 100) -> Iterator[Job]:
        """The caller's jobs, newest first, page by page as they are read; ``state`` a JobState
        to keep only those, ``name`` text their name contains."""
        token = ""
        while True:
            request = pb.ListJobsRequest(page_size=page_size, page_token=token, state=state, name=name)
            page = self._call(self._stub.ListJobs, request)
            yield from (from_message(Job, job) for job in page.jobs)
            token = page.next_page_token
            if not token:
                return

    def classes(self, model: str = "") -> ModelClasses:
        """The classes of ``model`` ("NAME" or "NAME:VERSION"; "": the gateway's default) and its version."""
        return from_message(ModelClasses, self._call(self._stub.ListClasses, pb.ListClassesRequest(model=model)))

    def serving(self) -> bool:
        """True when the gateway's health service says SERVING (it reaches Redis)."""
        request = health_pb2.HealthCheckRequest()
        try:
            status = health_pb2_grpc.HealthStub(self._channel).Check(request, timeout=self.timeout_s).status
        except grpc.RpcError:
            return False
        return status == health_pb2.HealthCheckResponse.SERVING

    def status(self) -> ServiceStatus:
        """Whether Redis, the default model and the workers answer, as the gateway sees them."""
        return from_message(ServiceStatus, self._call(self._stub.GetStatus, pb.GetStatusRequest()))

    def classify_images(
        self, images: list[tuple[str, bytes]], top_k: int = 0, model: str = "", explain: bool = False
    ) -> list[ImageResult]:
        """Classify a few encoded images, each ``(name, bytes)``, synchronously."""
        request = pb.ClassifyRequest(
            images=[pb.ClassifyImage(name=name, data=data) for name, data in images],
            top_k=top_k,
            model=model,
            explain=explain,
        )
        return [from_message(ImageResult, result) for result in self._call(self._stub.Classify, request).results]

    def classify(self, files: list[Path], top_k: int = 0, model: str = "", explain: bool = False) -> list[ImageResult]:
        """Classify a few files synchronously; ``explain`` adds each top-1 class's map."""
        images = [(str(path), Path(path).read_bytes()) for path in files]
        return self.classify_images(images, top_k=top_k, model=model, explain=explain)


class JobSubscription:
    """One WatchJob stream that another thread may cancel."""

    def __init__(self, call, gateway: str) -> None:
        self._call = call
        self._gateway = gateway

    def __iter__(self) -> Iterator[Job]:
        try:
            for update in self._call:
                yield from_message(Job, update)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise _converted(exc, self._gateway) from None

    def cancel(self) -> None:
        self._call.cancel()
