"""The gateway's error root: each subclass carries the gRPC status it maps to."""

from __future__ import annotations

import grpc


class PodiumError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(PodiumError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(PodiumError):
    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(PodiumError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(PodiumError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(PodiumError):
    code = grpc.StatusCode.UNAVAILABLE


class FailedPrecondition(PodiumError):
    code = grpc.StatusCode.FAILED_PRECONDITION
