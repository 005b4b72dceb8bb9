"""Podium: batch image classification served by NVIDIA Triton.

Importing ``podium`` gives the client API of a gateway, ``podium.PodiumClient``, and the
types it returns (``podium.Job``, ``podium.ImageResult``, their ``JobState`` and ``ImageStatus``); the
``podium`` command is ``podium.cli.main``. Failed calls raise ``PodiumError`` subclasses
(``NotFound``, ``Unavailable``, ...), re-exported here, whose ``status`` says what kind of
failure it was.

The rooms below, in the order an image travels (docs/architecture.md): ``podium.client``
and ``podium.cli`` (entry points), the services ``gateway`` and ``worker`` beside this
package, ``podium.stores`` (Redis, Triton, the model repository, object storage, the
results sink), ``podium.core`` (errors, settings, the job model, imaging, model metadata,
the generated API); the tools ``export`` (beside this package), ``podium.engine``,
``podium.train``, ``podium.evaluate``, ``podium.cluster``, ``podium.web``, ``podium.samples``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podium.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PodiumError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

if TYPE_CHECKING:
    from podium.client import PodiumClient
    from podium.client.records import ImageResult, ImageStatus, Job, JobState

# What the client returns (podium.client.records), loaded with it.
_RECORDS = ("ImageResult", "ImageStatus", "Job", "JobState")

__all__ = [
    "FailedPrecondition",
    "ImageResult",
    "ImageStatus",
    "InvalidArgument",
    "Job",
    "JobState",
    "NotFound",
    "PermissionDenied",
    "PodiumClient",
    "PodiumError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]


def __getattr__(name: str) -> object:
    # Loaded on first use: the services import podium.core and podium.stores, not gRPC's client.
    if name == "PodiumClient":
        from podium.client import PodiumClient

        return PodiumClient
    if name in _RECORDS:
        from podium.client import records

        return getattr(records, name)
    raise AttributeError(f"module 'podium' has no attribute {name!r}")
