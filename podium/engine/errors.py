"""The engine build's error type."""

from __future__ import annotations

from podium.core.errors import FailedPrecondition


class EngineBuildError(FailedPrecondition):
    """A TensorRT engine cannot be built, checked or installed here; the message says what to do."""


class NoGpu(EngineBuildError):
    """This machine has no CUDA GPU or no TensorRT: engines are built on the serving GPU."""
