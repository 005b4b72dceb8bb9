"""The Podium service registered with bytes that are no message answered INVALID_ARGUMENT.

grpcio answers a request its deserializer cannot parse with INTERNAL ("Exception
deserializing request!") before any code of ours runs, so a truncated or garbled request
would read as the gateway's fault. Here each method's deserializer hands such bytes over
as ``Undecodable``, and the method's behaviour raises ``InvalidArgument`` for it (the
error interceptor turns that into the status, as for every other bad request); a stream
raises it at the bad message. Handlers are built from the service's descriptor, as the
generated ``add_PodiumServicer_to_server`` builds them, so no method can be left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from podium.core.errors import InvalidArgument
from podium.core.proto import podium_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["Podium"]

_HANDLERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


@dataclass(frozen=True)
class Undecodable:
    """Request bytes that are not a message of the method's request type."""

    type_name: str
    reason: str

    def refused(self) -> InvalidArgument:
        return InvalidArgument(f"the request is not a valid {self.type_name} message ({self.reason})")


def add_podium_servicer(servicer, server: grpc.Server) -> None:
    """Register ``servicer``'s methods (``add_PodiumServicer_to_server``, tolerant of bad bytes)."""
    handlers = {}
    for method in SERVICE.methods:
        request, response = getattr(pb, method.input_type.name), getattr(pb, method.output_type.name)
        behaviour = getattr(servicer, method.name)
        make = _HANDLERS[method.client_streaming, method.server_streaming]
        handlers[method.name] = make(
            _checked_stream(behaviour) if method.client_streaming else _checked(behaviour),
            request_deserializer=_tolerant(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def _tolerant(message_type) -> Callable[[bytes], object]:
    def deserialize(data: bytes):
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return Undecodable(message_type.DESCRIPTOR.name, str(exc) or "it cannot be parsed")

    return deserialize


def _checked(behaviour: Callable) -> Callable:
    def call(request, context):
        if isinstance(request, Undecodable):
            raise request.refused()
        return behaviour(request, context)

    return call


def _checked_stream(behaviour: Callable) -> Callable:
    def call(requests: Iterator, context):
        return behaviour(_parsed(requests), context)

    return call


def _parsed(requests: Iterator) -> Iterator:
    for request in requests:
        if isinstance(request, Undecodable):
            raise request.refused()
        yield request
