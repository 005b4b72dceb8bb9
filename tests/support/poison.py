"""A Celery worker plugin for the poison-image test (loaded with `--include`).

An image whose bytes contain POISON_MARK kills the worker process that classifies it,
every time, as a crashing decoder would: the chunk comes back again and again until
Podium finds the image and fails it alone."""

from __future__ import annotations

import os
import signal

from worker import chunks

POISON_MARK = b"PODIUM-POISON-IMAGE"
_classify_bytes = chunks.classify_bytes


def _classify_or_die(classifier, data, k, *args, **kwargs):
    if POISON_MARK in data:
        os.kill(os.getpid(), signal.SIGKILL)
    return _classify_bytes(classifier, data, k, *args, **kwargs)


chunks.classify_bytes = _classify_or_die
