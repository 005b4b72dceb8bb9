"""The Podium client: the PodiumClient Python API of a gateway (the `podium` command is ``ops.main``).

Failed calls raise ``errors.PodiumError`` subclasses (``NotFound``, ``Unavailable``, ...),
re-exported here, whose ``status`` says what kind of failure it was.
"""

from errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PodiumError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from podium.client import PodiumClient

__all__ = [
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PodiumClient",
    "PodiumError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
