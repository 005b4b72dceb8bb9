"""Summaries of repeated measurements: the median and its spread."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Repeated samples of one figure; ``median`` is what tables show, min–max its spread."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("a summary needs at least one sample")
        return cls(tuple(float(value) for value in samples))

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def iqr(self) -> tuple[float, float]:
        """Quartiles (inclusive method); both equal the sample itself when n == 1."""
        if self.n == 1:
            return self.samples[0], self.samples[0]
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q1, q3

    def scaled(self, factor: float) -> Summary:
        """The same samples in another unit (seconds -> milliseconds)."""
        return Summary(tuple(value * factor for value in self.samples))

    def to_json(self) -> dict:
        q1, q3 = self.iqr
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "q1": q1,
            "q3": q3,
            "n": self.n,
            "samples": list(self.samples),
        }


def format_summary(summary: Summary, digits: int = 1) -> str:
    """'31.2 (30.8–32.0, n=3)': the median, then min–max."""
    if summary.n == 1:
        return f"{summary.median:.{digits}f} (n=1)"
    return f"{summary.median:.{digits}f} ({summary.low:.{digits}f}–{summary.high:.{digits}f}, n={summary.n})"


# Responses of one model execution reach the client within a few ms of each other.
BURST_GAP_S = 0.005


def merge_bursts(events: Sequence[tuple[float, int]], gap_s: float = BURST_GAP_S) -> list[tuple[float, int]]:
    """Completion events (time, images) merged where they follow each other within ``gap_s``:
    one Triton execution answers several requests at once, and they count as one completion,
    at the time of its last response."""
    merged: list[tuple[float, int]] = []
    for time_s, images in sorted(events):
        if merged and time_s - merged[-1][0] <= gap_s:
            merged[-1] = (time_s, merged[-1][1] + images)
        else:
            merged.append((time_s, images))
    return merged


def rate_between_completions(events: Sequence[tuple[float, int]], start: float, end: float) -> float | None:
    """Images/s of a closed loop from its completion events (time, images), steady state only.

    Triton finishes work in bursts (one model execution answers several requests at once),
    so counting images inside a fixed window is off by up to a burst. Measuring from the
    last completion at or before ``start`` to the last one at or before ``end`` spans whole
    bursts only (events are merged into bursts first). None when that span holds no burst.
    """
    bursts = merge_bursts(events)
    before = [t for t, _ in bursts if t <= start]
    inside = [(t, n) for t, n in bursts if start < t <= end]
    if before:
        first = before[-1]
    elif len(inside) >= 2:
        # Nothing finished before the window opened: start at its first completion instead.
        first, inside = inside[0][0], inside[1:]
    else:
        return None
    if not inside:
        return None
    return sum(n for _, n in inside) / (inside[-1][0] - first)
