"""The one error root of Podium, free of any transport.

Every exception class of the project derives from ``PodiumError``. Each class carries a
transport-neutral ``Status``; the gateway turns it into a gRPC code (``podium.core.proto.status``),
the command line into a message and an exit code (``podium.cli.failures``), both in one
table. Third-party errors are converted where they enter (``raise ... from exc``), so
that nothing above the edge sees a tritonclient, redis or onnxruntime exception.

The tree::

    PodiumError                           INTERNAL unless a subclass says otherwise
    ├── InvalidArgument                   the request or input is wrong; resending it will not help
    │   ├── imaging.ImageDecodeError          one image is not a decodable image
    │   └── worker.sources.SourceError        one image's bytes cannot be read
    ├── NotFound                          no such job, model, version or folder
    ├── FailedPrecondition                the system is not in a state to do this (yet)
    │   ├── export.ExportError                an export cannot proceed
    │   ├── engine.EngineBuildError           a TensorRT engine cannot be built or installed
    │   │   └── engine.NoGpu                      no CUDA GPU or TensorRT here
    │   ├── podium.stores.modelrepo.ModelRepositoryError    a model repository is missing, unreadable or in the way
    │   ├── podium.stores.modelrepo.FidelityError           a model disagrees with its reference: not installed
    │   └── cluster.TritonNotInstalled        the embedded Triton is missing
    ├── Unavailable                       try again later: a server is down or restarting
    │   ├── podium.stores.inference.TritonUnavailable       Triton cannot answer now (also a TritonError)
    │   ├── jobstore.StoreUnavailable         Redis cannot be reached or did not answer in time
    │   ├── resultsink.SinkUnavailable        the results sink cannot take or give a file now
    │   ├── podium.cluster.ProcessFailed             a local service did not start
    │   └── podium.web.UploadAborted                 the browser broke off an upload
    ├── ResourceExhausted                 a limit was reached (jobs, bytes, streams, memory)
    │   └── jobstore.StoreFull                Redis is at its memory limit
    ├── Unauthenticated                   no or an unknown API key
    ├── PermissionDenied                  the key may not do this
    └── Internal                          a bug or an unexpected failure
        ├── podium.stores.inference.TritonError             Triton refused a request
        ├── jobstore.StoreError               Redis refused a command
        └── bench.JobFailed                   a benchmark job did not complete
"""

from __future__ import annotations

import enum


class Status(enum.Enum):
    """What kind of failure an error is, whatever carries it (gRPC, CLI, HTTP)."""

    INVALID_ARGUMENT = "invalid argument"
    NOT_FOUND = "not found"
    FAILED_PRECONDITION = "failed precondition"
    UNAVAILABLE = "unavailable"
    RESOURCE_EXHAUSTED = "resource exhausted"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission denied"
    INTERNAL = "internal"


class PodiumError(Exception):
    """The root: a message a person can act on, an optional hint, and a status.

    A subclass may set a class-wide ``hint``; one given to the constructor replaces it."""

    status: Status = Status.INTERNAL
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidArgument(PodiumError):
    status = Status.INVALID_ARGUMENT


class NotFound(PodiumError):
    status = Status.NOT_FOUND


class FailedPrecondition(PodiumError):
    status = Status.FAILED_PRECONDITION


class Unavailable(PodiumError):
    status = Status.UNAVAILABLE


class ResourceExhausted(PodiumError):
    status = Status.RESOURCE_EXHAUSTED


class Unauthenticated(PodiumError):
    status = Status.UNAUTHENTICATED


class PermissionDenied(PodiumError):
    status = Status.PERMISSION_DENIED


class Internal(PodiumError):
    status = Status.INTERNAL


_BY_STATUS: dict[Status, type[PodiumError]] = {
    cls.status: cls
    for cls in (
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        Unavailable,
        ResourceExhausted,
        Unauthenticated,
        PermissionDenied,
        Internal,
    )
}


def error_for(status: Status, message: str, *, hint: str | None = None) -> PodiumError:
    """The PodiumError subclass of ``status`` (e.g. a client turning a gRPC status back)."""
    return _BY_STATUS[status](message, hint=hint)


__all__ = [
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PodiumError",
    "ResourceExhausted",
    "Status",
    "Unauthenticated",
    "Unavailable",
    "error_for",
]
