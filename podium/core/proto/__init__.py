"""The podium.v1 gRPC API: podium.proto and its generated code (never edit the _pb2 files;
run `make proto`)."""

from podium.core.proto import podium_pb2, podium_pb2_grpc

__all__ = [
    "options",
    "podium_pb2",
    "podium_pb2_grpc",
    "status",
]
