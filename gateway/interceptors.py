"""Server interceptors: API keys, and the one place errors become gRPC statuses."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import grpc

from gateway.access import API_KEY_HEADER
from podium.core.errors import PodiumError, Status
from podium.core.proto.status import error_trailers, grpc_code

log = logging.getLogger(__name__)

# Probes must work without a key; everything else (reflection included) needs one.
_OPEN_SERVICES = ("/grpc.health.v1.Health/",)
_HANDLER_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
# Failures of the service rather than of the request: worth a line in the gateway log.
_LOGGED = frozenset({Status.UNAVAILABLE, Status.INTERNAL, Status.RESOURCE_EXHAUSTED})
# Messages may quote client input (paths, names): never echo an unbounded amount of it.
MAX_DETAILS_CHARS = 1000


def _replace_behaviour(handler: grpc.RpcMethodHandler, wrap: Callable) -> grpc.RpcMethodHandler:
    for kind in _HANDLER_KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return handler._replace(**{kind: wrap(behaviour, streaming=kind.endswith("_stream"))})
    return handler


class ApiKeyInterceptor(grpc.ServerInterceptor):
    """Refuses calls without an accepted ``x-api-key`` (compared in constant time)."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    def _accepted(self, metadata: tuple) -> bool:
        given = next((value for key, value in metadata or () if key == API_KEY_HEADER), None)
        if given is None:
            return False
        given_bytes = given.encode() if isinstance(given, str) else given
        # No early exit: every key is compared, so timing says nothing about which matched.
        return sum(hmac.compare_digest(given_bytes, key) for key in self._keys) > 0

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not self._keys or handler_call_details.method.startswith(_OPEN_SERVICES):
            return handler
        if self._accepted(handler_call_details.invocation_metadata):
            return handler

        def deny(_behaviour, streaming):
            def refuse(_request, context):
                context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"missing or unknown API key: pass --api-key or set PODIUM_API_KEY ({API_KEY_HEADER} header)",
                )

            return refuse

        return _replace_behaviour(handler, deny)


class ErrorInterceptor(grpc.ServerInterceptor):
    """PodiumError -> its status and message; anything else -> INTERNAL, logged, no details."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method

        def wrap(behaviour, streaming):
            if streaming:

                def stream(request, context):
                    try:
                        yield from behaviour(request, context)
                    except Exception as exc:  # noqa: BLE001 - mapped below
                        _abort(context, method, exc)

                return stream

            def unary(request, context):
                try:
                    return behaviour(request, context)
                except Exception as exc:  # noqa: BLE001 - mapped below
                    _abort(context, method, exc)

            return unary

        return _replace_behaviour(handler, wrap)


def _abort(context: grpc.ServicerContext, method: str, exc: Exception) -> None:
    if isinstance(exc, PodiumError):
        if exc.status in _LOGGED:
            log.warning("%s: %s", method, exc.message)
        # The hint travels beside the message, so that the client shows the one written here.
        context.set_trailing_metadata(error_trailers(truncated(exc.hint)))
        context.abort(grpc_code(exc.status), truncated(exc.message))
    if context.code() not in (None, grpc.StatusCode.OK):
        raise exc  # the handler already aborted with its own status
    if isinstance(exc, grpc.RpcError) and not context.is_active():
        # Reading the request stream of a call that ended (the client went away, or an idle
        # upload was cancelled): nobody to answer, nothing internal.
        log.info("%s: the call ended before its request stream did", method)
        context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
    log.exception("internal error in %s", method, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, "internal error in the gateway; the gateway log has details")


def truncated(message: str, limit: int = MAX_DETAILS_CHARS) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
