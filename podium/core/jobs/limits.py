"""``--max-failed``: how many failed images a job tolerates before it stops as FAILED."""

from __future__ import annotations

import re
from dataclasses import dataclass

from podium.core.errors import InvalidArgument

# At most 15 digits a side: Python refuses to read integers of over 4,300 digits (INTERNAL).
_LIMIT = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,15})?)\s*(%?)\s*$")


@dataclass(frozen=True)
class FailureLimit:
    """At most ``count`` failed images, or at most ``percent`` % of the job's images (None: no limit).

    A count is checked at each failure; a percentage once the job's total is known (its
    upload or listing done), so an early run of failures in a big folder does not stop it.
    """

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> FailureLimit:
        """ "" (no limit), "N" or "P%"."""
        if not text.strip():
            return cls()
        match = _LIMIT.match(text)
        if match is None:
            raise InvalidArgument(f"max_failed must be a count N or a percentage P%, not {text!r}")
        number, percent = match.groups()
        if percent:
            value = float(number)
            if not 0 <= value < 100:
                raise InvalidArgument(f"max_failed percentage must be in [0, 100), not {text!r}")
            return cls(percent=value)
        if "." in number:
            raise InvalidArgument(f"max_failed count must be a whole number, not {text!r}")
        return cls(count=int(number))

    @property
    def text(self) -> str:
        if self.count is not None:
            return str(self.count)
        if self.percent is not None:
            return f"{self.percent:g}%"
        return ""
