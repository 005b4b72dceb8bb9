"""What travels back with a response so that the client knows it is its own.

Since 2026-12: a **row tag**. The client sends one int64 per image (``ROW_TAG_NAME``),
unique to the request, and Podium's model.py echoes it (``ROW_TAG_ECHO_NAME``): it costs
nothing on either side. Versions exported before that know only the pixel fingerprint
below, which the client still computes for them (~0.45 CPU-ms per 224x224 image, on
each side).

Measured on the embedded Triton (2.51, Python backend): under overload with a queue
policy, a few responses came back to the wrong request (another image's probabilities).
The Python-backend model therefore returns, beside the probabilities, this fingerprint
of the pixels it classified, and the client checks it against the pixels it sent: a
response that belongs to another request is never taken for this one's.

Four integer projections of the flattened pixels onto fixed ±1 weights: exact (int64),
different for any two images that differ, cheap (a millisecond per image). The same
function is written out in ``podium/stores/modelrepo/triton_python_model.py`` (Triton's stub cannot
import Podium); a unit test holds the two equal.
"""

from __future__ import annotations

import functools

import numpy as np

ROW_TAG_NAME = "row_tag"
ROW_TAG_ECHO_NAME = "row_tag_echo"
FINGERPRINT_NAME = "fingerprint"
FINGERPRINT_SIZE = 4
FINGERPRINT_SEED = 20260101


@functools.cache
def _weights(values: int) -> np.ndarray:
    signs = np.random.default_rng(FINGERPRINT_SEED).integers(0, 2, (FINGERPRINT_SIZE, values), dtype=np.int64)
    return signs * 2 - 1


def fingerprint(pixels: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] -> int64 [N, FINGERPRINT_SIZE]."""
    flat = pixels.reshape(len(pixels), -1).astype(np.int64)
    return flat @ _weights(flat.shape[1]).T
