"""A Celery worker plugin for the poison-image test (loaded with `--include`).

An image whose bytes contain POISON_MARK kills the worker process that decodes it, every
time, as a crashing decoder would: the chunk comes back again and again until Podium
finds the image and fails it alone. The hook is the decoder itself, which every way a
worker classifies an image (a chunk's batch, the careful image-by-image mode) goes
through."""

from __future__ import annotations

import os
import signal

from podium.core.imaging.serving import Decoder

POISON_MARK = b"PODIUM-POISON-IMAGE"
_model_input = Decoder.model_input


def _decode_or_die(self, data, *args, **kwargs):
    if POISON_MARK in data:
        os.kill(os.getpid(), signal.SIGKILL)
    return _model_input(self, data, *args, **kwargs)


Decoder.model_input = _decode_or_die
