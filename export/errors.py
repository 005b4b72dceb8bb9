"""The one error type of the export package."""

from __future__ import annotations

from podium.core.errors import FailedPrecondition


class ExportError(FailedPrecondition):
    """An export cannot proceed; the message says what was found and what to do next."""
