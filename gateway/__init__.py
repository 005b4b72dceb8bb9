"""The gRPC gateway: jobs in, progress and results out."""

from gateway.server import Gateway, build_gateway
from gateway.settings import GatewaySettings

__all__ = [
    "Gateway",
    "GatewaySettings",
    "access",
    "build_gateway",
    "settings",
    "webhooks",
]
