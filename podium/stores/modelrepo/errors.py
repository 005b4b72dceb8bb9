"""The model repository's error: its files are missing, unreadable or in the way."""

from __future__ import annotations

from podium.core.errors import FailedPrecondition


class ModelRepositoryError(FailedPrecondition):
    """A model repository cannot be read or written as asked; the message says why and what to do."""
