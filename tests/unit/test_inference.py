"""The Triton client's checks, without Triton: a response must carry its request's fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from inference import TritonUnavailable
from inference.triton import check_fingerprint
from modelmeta import fingerprint


def test_a_response_with_another_requests_fingerprint_is_refused():
    rng = np.random.default_rng(0)
    mine, theirs = rng.integers(0, 256, (2, 1, 224, 224, 3), dtype=np.uint8)
    check_fingerprint(mine, fingerprint(mine), "m")  # its own: accepted
    with pytest.raises(TritonUnavailable, match="another request's response"):
        check_fingerprint(mine, fingerprint(theirs), "m")
    with pytest.raises(TritonUnavailable):
        check_fingerprint(mine, None, "m")
