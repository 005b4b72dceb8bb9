"""PodiumServicer: protobuf in -> JobService call -> protobuf out. Nothing else."""

from __future__ import annotations

from collections.abc import Iterator

from errors import InvalidArgument
from gateway.convert import job_to_proto, result_to_proto
from gateway.service import JobService
from gateway.uploads import FileChunk
from jobs import ImageResult
from proto import podium_pb2 as pb
from proto import podium_pb2_grpc as pb_grpc


def _file_chunks(requests: Iterator[pb.UploadRequest]) -> Iterator[FileChunk]:
    for request in requests:
        if request.WhichOneof("item") != "file":
            raise InvalidArgument("only the first message of an upload may be a spec; the rest must be files")
        chunk = request.file
        yield FileChunk(chunk.path, chunk.data, chunk.last, chunk.client_error)


class PodiumServicer(pb_grpc.PodiumServicer):
    def __init__(self, service: JobService) -> None:
        self._service = service

    def SubmitUpload(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "spec":
            raise InvalidArgument("an upload must start with a spec message")
        job = self._service.submit_upload(first.spec.top_k, first.spec.name, _file_chunks(request_iterator))
        return job_to_proto(job)

    def SubmitPath(self, request, context):
        return job_to_proto(self._service.submit_path(request.path, request.spec.top_k, request.spec.name))

    def GetJob(self, request, context):
        return job_to_proto(self._service.get(request.job_id))

    def WatchJob(self, request, context):
        for job in self._service.watch(request.job_id, context.is_active):
            yield job_to_proto(job)

    def GetResults(self, request, context):
        results = self._service.results(request.job_id, request.start_index, request.follow, context.is_active)
        for result in results:
            yield result_to_proto(result)

    def CancelJob(self, request, context):
        return job_to_proto(self._service.cancel(request.job_id))

    def ListClasses(self, request, context):
        meta = self._service.model_metadata()
        return pb.ListClassesResponse(classes=meta.classes, model_name=meta.model_name, untrained=meta.untrained)

    def Classify(self, request, context):
        images = [(image.name, image.data) for image in request.images]
        outcomes = self._service.classify(images, request.top_k)
        return pb.ClassifyResponse(
            results=[
                result_to_proto(ImageResult(i, name, outcome))
                for i, ((name, _), outcome) in enumerate(zip(images, outcomes))
            ]
        )
