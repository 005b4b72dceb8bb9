"""Waiting out a Triton outage: retry with backoff until it passes the outage limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from podium.core.jobs import ImageOutcome
from podium.stores.inference import TritonUnavailable
from worker.runtime import Runtime

log = logging.getLogger(__name__)

_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 15.0
T = TypeVar("T")


def waiting_for_triton(rt: Runtime, attempt: Callable[[], T]) -> T | ImageOutcome:
    """``attempt()``, again after each TritonUnavailable (timed per process, from the first
    failure); once the outage passes ``triton_outage_limit_s``, the error outcome its images get."""
    delay = _BACKOFF_START_S
    while True:
        try:
            value = attempt()
        except TritonUnavailable as exc:
            lasted_s = rt.outage.failing()
            if lasted_s >= rt.settings.triton_outage_limit_s:
                return ImageOutcome(error=f"inference server unavailable for {lasted_s / 60:.1f} minutes: {exc}")
            log.warning("Triton unavailable for %.0f s (%s); retrying in %.1f s", lasted_s, exc, delay)
            time.sleep(min(delay, rt.settings.triton_outage_limit_s - lasted_s + 0.01))
            delay = min(delay * 2, _BACKOFF_MAX_S)
            continue
        rt.outage.answered()
        return value
