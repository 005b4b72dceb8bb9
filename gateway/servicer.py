"""PodiumServicer: protobuf in -> service call -> protobuf out. Nothing else.

Besides the conversion it only knows who calls (``gateway.access``) and which calls are
long-lived streams, each of which holds a slot (``gateway.streams``) for its life.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import grpc

from gateway.access import Caller, caller_of
from gateway.cluster_status import ClusterStatus
from gateway.convert import job_to_proto, result_to_proto, state_from_proto
from gateway.model_service import ModelService
from gateway.service import JobService
from gateway.settings import GatewaySettings
from gateway.streams import IdleWatch, StreamSlots
from gateway.uploads import FileChunk
from podium.core.errors import InvalidArgument, Unavailable
from podium.core.jobs import ImageResult
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from podium.core.proto.options import from_spec

FILES_PER_MESSAGE = 1000


def _file_chunks(requests: Iterator[pb.UploadRequest], watch: IdleWatch) -> Iterator[FileChunk]:
    for request in watch.received(requests):
        kind = request.WhichOneof("item")
        if kind == "file":
            chunks = (request.file,)
        elif kind == "files":  # several in one message, as many `file` messages would carry them
            chunks = request.files.chunks
        else:
            raise InvalidArgument("only the first message of an upload may be a spec; the rest must be files")
        for chunk in chunks:
            yield FileChunk(chunk.path, chunk.data, chunk.last, chunk.client_error)


def _manifest_lines(requests: Iterator[pb.ManifestRequest], watch: IdleWatch) -> Iterator[str]:
    for request in watch.received(requests):
        if request.WhichOneof("item") != "lines":
            raise InvalidArgument("only the first message of a manifest may be a spec; the rest must be lines")
        yield from request.lines.paths


class PodiumServicer(pb_grpc.PodiumServicer):
    def __init__(
        self, settings: GatewaySettings, jobs: JobService, model: ModelService, status: ClusterStatus | None = None
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._model = model
        self._status = status
        self._streams = StreamSlots(settings.max_streams, settings.max_streams_per_key)
        self._admin_keys = settings.admin_api_key_list()
        self._keys_required = bool(settings.api_key_list())

    def _caller(self, context: grpc.ServicerContext) -> Caller:
        return caller_of(context.invocation_metadata(), self._admin_keys, self._keys_required)

    def _stream_slot(self, context: grpc.ServicerContext, caller: Caller):
        return self._streams.hold(caller.owner if self._keys_required else context.peer().rsplit(":", 1)[0])

    def SubmitUpload(self, request_iterator, context):
        caller = self._caller(context)
        with self._stream_slot(context, caller), IdleWatch(self._settings.upload_idle_s, context.cancel) as watch:
            first = next(request_iterator, None)
            watch.busy()
            if first is None or first.WhichOneof("item") != "spec":
                raise InvalidArgument("an upload must start with a spec message")
            chunks = _file_chunks(request_iterator, watch)
            job = self._jobs.submit_upload(from_spec(first.spec), caller, chunks, keepalive=watch.touch)
        return job_to_proto(job)

    def SubmitManifest(self, request_iterator, context):
        caller = self._caller(context)
        with self._stream_slot(context, caller), IdleWatch(self._settings.upload_idle_s, context.cancel) as watch:
            first = next(request_iterator, None)
            watch.busy()
            if first is None or first.WhichOneof("item") != "spec":
                raise InvalidArgument("a manifest must start with a spec message")
            lines = _manifest_lines(request_iterator, watch)
            job = self._jobs.submit_manifest(lines, from_spec(first.spec), caller)
        return job_to_proto(job)

    def SubmitPath(self, request, context):
        return job_to_proto(self._jobs.submit_path(request.path, from_spec(request.spec), self._caller(context)))

    def GetJob(self, request, context):
        return job_to_proto(self._jobs.get(request.job_id, self._caller(context)))

    def FindJob(self, request, context):
        return job_to_proto(self._jobs.find(request.job_key, self._caller(context)))

    def ListJobFiles(self, request, context):
        paths = iter(self._jobs.files(request.job_id, self._caller(context)))
        while batch := list(itertools.islice(paths, FILES_PER_MESSAGE)):
            yield pb.JobFiles(paths=batch)

    def WatchJob(self, request, context):
        caller = self._caller(context)
        with self._stream_slot(context, caller):
            for job in self._jobs.watch(request.job_id, caller, context.is_active):
                yield job_to_proto(job)

    def GetResults(self, request, context):
        caller = self._caller(context)
        results = self._jobs.results(request.job_id, caller, request.start_index, request.follow, context.is_active)
        if not request.follow:  # a finite read: no slot needed
            yield from (result_to_proto(result) for result in results)
            return
        with self._stream_slot(context, caller):
            yield from (result_to_proto(result) for result in results)

    def GetResultTable(self, request, context):
        parts = self._jobs.result_table(request.job_id, self._caller(context), request.start_index)
        yield from (pb.ResultTablePart(arrow_stream=part) for part in parts)

    def CancelJob(self, request, context):
        return job_to_proto(self._jobs.cancel(request.job_id, self._caller(context)))

    def DeleteJob(self, request, context):
        self._jobs.delete(request.job_id, self._caller(context))
        return pb.DeleteJobResponse(job_id=request.job_id)

    def ListJobs(self, request, context):
        page = self._jobs.list(
            self._caller(context), request.page_size, request.page_token, state_from_proto(request.state), request.name
        )
        return pb.ListJobsResponse(jobs=[job_to_proto(job) for job in page.jobs], next_page_token=page.next_cursor)

    def ListClasses(self, request, context):
        ref, meta = self._model.resolve(request.model)
        return pb.ListClassesResponse(
            classes=meta.classes,
            model_name=ref.name,
            untrained=meta.untrained,
            model_version=ref.version,
            target=meta.target,
            precision=meta.precision,
            explains=bool(meta.cam_name),
            resize=meta.preprocessing.resize,
            crop=meta.preprocessing.crop,
            architecture=meta.architecture,
            interpolation=meta.preprocessing.interpolation,
            grayscale=meta.preprocessing.grayscale,
        )

    def Classify(self, request, context):
        images = [(image.name, image.data) for image in request.images]
        outcomes = self._model.classify(images, request.top_k, request.model, request.explain)
        return pb.ClassifyResponse(
            results=[
                result_to_proto(ImageResult(i, name, outcome))
                for i, ((name, _), outcome) in enumerate(zip(images, outcomes, strict=True))
            ]
        )

    def GetStatus(self, request, context):
        if self._status is None:
            raise Unavailable("this gateway reports no status")
        reading = self._status.read()
        return pb.GetStatusResponse(
            redis_ok=reading.redis_ok,
            model_ok=reading.model_ok,
            model=reading.model,
            model_error=reading.model_error,
            workers=[pb.WorkerStatus(name=name) for name in reading.workers],
            checked_at=reading.checked_at,
        )
