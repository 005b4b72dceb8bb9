"""What every call of the client shares: its limits, its reconnect pacing, and how a failed
call becomes the PodiumError of its status."""

from __future__ import annotations

import grpc

from podium.core.errors import PodiumError, Status, error_for
from podium.core.proto.status import read_trailers, status_of

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
