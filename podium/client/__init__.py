"""The client library: ``PodiumClient``, the Python API of a gateway (``api``), the types it
returns (``records``: a ``Job``, ``ImageResult``s, never protobuf objects), its settings,
result records (JSONL/CSV), manifests and heat-map overlays. gRPC errors come back as
``PodiumError`` subclasses with the gateway's hint."""

from podium.client.api import PodiumClient
from podium.client.records import (
    ClassActivationMap,
    ImageResult,
    ImageStatus,
    Job,
    JobSpec,
    JobState,
    ModelClasses,
    ServiceStatus,
    WorkerStatus,
)

__all__ = [
    "ClassActivationMap",
    "ImageResult",
    "ImageStatus",
    "Job",
    "JobSpec",
    "JobState",
    "ModelClasses",
    "PodiumClient",
    "ServiceStatus",
    "WorkerStatus",
    "api",
    "bulk",
    "heatmaps",
    "manifest",
    "output",
    "records",
    "settings",
    "states",
]
