"""The client library: ``PodiumClient``, the Python API of a gateway (``api``), its settings,
result records (JSONL/CSV), manifests and heat-map overlays. gRPC errors come back as
``PodiumError`` subclasses with the gateway's hint."""

from podium.client.api import PodiumClient

__all__ = [
    "PodiumClient",
    "api",
    "bulk",
    "heatmaps",
    "manifest",
    "output",
    "settings",
    "states",
]
