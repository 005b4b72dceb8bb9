"""The one table between Podium's transport-neutral error statuses and gRPC status codes.

The gateway maps a ``PodiumError``'s status to its gRPC code with ``grpc_code``; the
client maps a gRPC code back to the matching ``PodiumError`` class with ``status_of``.
(Hand-written; the generated files beside it are not.)
"""

from __future__ import annotations

import grpc

from podium.core.errors import Status

GRPC_CODES: dict[Status, grpc.StatusCode] = {
    Status.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Status.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Status.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Status.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Status.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Status.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Status.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Status.INTERNAL: grpc.StatusCode.INTERNAL,
}
_STATUSES = {code: status for status, code in GRPC_CODES.items()}
# gRPC codes Podium never sends on purpose, as a client should read them.
_OTHER_CODES = {
    grpc.StatusCode.DEADLINE_EXCEEDED: Status.UNAVAILABLE,
    grpc.StatusCode.CANCELLED: Status.UNAVAILABLE,
    grpc.StatusCode.ABORTED: Status.UNAVAILABLE,
    grpc.StatusCode.OUT_OF_RANGE: Status.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS: Status.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED: Status.FAILED_PRECONDITION,
}


def grpc_code(status: Status) -> grpc.StatusCode:
    return GRPC_CODES[status]


def status_of(code: grpc.StatusCode) -> Status:
    return _STATUSES.get(code) or _OTHER_CODES.get(code, Status.INTERNAL)


# Trailing metadata of a call the gateway refused with a PodiumError: its hint (UTF-8, hence
# a binary key), and a mark that the gateway itself answered (so that a client tells "Redis
# is away" from "the gateway cannot be reached").
HINT_KEY = "podium-hint-bin"
ANSWERED_KEY = "podium-answered"


def error_trailers(hint: str) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata the gateway sends with a PodiumError's status."""
    return ((ANSWERED_KEY, "1"), *(((HINT_KEY, hint.encode()),) if hint else ()))


def read_trailers(metadata) -> tuple[bool, str | None]:
    """(the gateway answered, its hint) from a failed call's trailing metadata."""
    values = dict(metadata or ())
    hint = values.get(HINT_KEY)
    if isinstance(hint, bytes):
        hint = hint.decode(errors="replace")
    return ANSWERED_KEY in values, hint or None
