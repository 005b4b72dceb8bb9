"""The bulk read's rounding: numpy's, equal to Python's round value for value."""

import numpy as np
import pytest

from podium.client.bulk import rounded


@pytest.mark.parametrize("decimals", [4, 7])
def test_rounding_float32_values_in_bulk_equals_pythons_round(decimals):
    rng = np.random.default_rng(7)
    near_ties = (rng.integers(0, 10**decimals, 50_000) + 0.5) / 10**decimals  # as near halves as float32 gets
    values = np.concatenate(
        [
            rng.random(150_000),
            near_ties,
            10.0 ** rng.uniform(-12, 0, 50_000),  # tiny probabilities, printed with exponents
            -rng.random(1_000),
            [0.0, 1.0, 0.5, 1e-7, 5e-8, 1.5e-7, 0.00005, 0.00015, 65504.0],
        ]
    ).astype(np.float32)
    assert rounded(values, decimals) == [round(float(v), decimals) for v in values]
