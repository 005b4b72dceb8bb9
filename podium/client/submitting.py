"""Submitting jobs: a folder uploaded, chunks relayed, a server path or a manifest; a submit
with a job key resumes its job."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import grpc

from podium.client.calls import RECONNECT_FIRST_DELAY_S, RECONNECT_MAX_DELAY_S, _converted
from podium.client.records import Job, from_message
from podium.client.requests import chunk_requests, job_options, manifest_requests, upload_requests
from podium.core.errors import InvalidArgument, Unavailable
from podium.core.jobs import JobOptions
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from podium.core.proto.options import to_spec


class JobSubmissions:
    """Submitting jobs (a role of ``PodiumClient``, over its stub and metadata)."""

    gateway: str
    reconnect_s: float
    timeout_s: float
    _stub: pb_grpc.PodiumStub
    _metadata: tuple
    _call: Callable

    def submit_folder(
        self,
        folder: Path | str,
        on_file: Callable[[str, int], None] | None = None,
        options: JobOptions | None = None,
        **fields: object,
    ) -> Job:
        """Upload every non-hidden file under ``folder`` as a job, streamed in folder order (small
        files several to a message).

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
                return from_message(Job, self._upload(folder, spec, on_file, job_key))
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

    def submit_chunks(self, chunks: Iterable[pb.FileChunk], options: JobOptions | None = None, **fields: object) -> Job:
        """Upload files given as a stream of chunks (each file's chunks in a row, the last with
        ``last=True``), e.g. as they arrive from a browser; options as for submit_folder."""
        requests = chunk_requests(to_spec(job_options(options, fields)), chunks)
        try:
            return from_message(Job, self._stub.SubmitUpload(requests, metadata=self._metadata))
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def submit_path(self, path: str, options: JobOptions | None = None, **fields: object) -> Job:
        """Submit a folder on the workers' storage (inside the gateway's data roots) or an
        s3:// prefix; options as for submit_folder."""
        request = pb.SubmitPathRequest(path=path, spec=to_spec(job_options(options, fields)))
        return from_message(Job, self._call(self._stub.SubmitPath, request, timeout_s=max(self.timeout_s, 600)))

    def submit_manifest(self, paths: Iterable[str], options: JobOptions | None = None, **fields: object) -> Job:
        """Submit a list of images, each an absolute path under the gateway's data roots or an
        s3:// URL; results keep the list's order. Options as for submit_folder."""
        requests = manifest_requests(to_spec(job_options(options, fields)), paths)
        try:
            return from_message(Job, self._stub.SubmitManifest(requests, metadata=self._metadata))
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None

    def find_job(self, job_key: str) -> Job | None:
        """The caller's job submitted with ``job_key``, or None."""
        try:
            found = self._found(job_key)
        except grpc.RpcError as exc:
            raise _converted(exc, self.gateway) from None
        return None if found is None else from_message(Job, found)

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
