"""A record made without JSON equals the one parsed back from the JSON the store keeps."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest

from podium.core.jobs import ActivationMap, ImageOutcome, Prediction, RecordedOutcome

GRID = (7, 7)


def random_outcome(rng: random.Random) -> ImageOutcome:
    if rng.random() < 0.2:
        return ImageOutcome(error="".join(rng.choices(string.printable + "é€😀", k=rng.randint(1, 40))))
    predictions = []
    for _ in range(rng.randint(1, 5)):
        probability = rng.choice([rng.random(), rng.uniform(-1e6, 1e6), 10.0 ** rng.randint(-12, 0), 1.0, 0.0])
        if rng.random() < 0.3:
            probability = np.float64(probability)  # what a model's answer may carry before .tolist()
        label = "".join(rng.choices(string.ascii_letters + " -é", k=rng.randint(0, 12)))
        predictions.append(Prediction(label, rng.randint(0, 999), probability))
    cam = ActivationMap.of(rng.randint(0, 99), GRID, [rng.random() for _ in range(49)]) if rng.random() < 0.3 else None
    return ImageOutcome(predictions=tuple(predictions), cam=cam)


@pytest.mark.parametrize("seed", range(4))
def test_a_record_made_directly_is_the_record_parsed_from_its_json(seed):
    rng = random.Random(seed)
    for _ in range(500):
        outcome = random_outcome(rng)
        finished_at = None if rng.random() < 0.2 else rng.uniform(0, 4e9)
        sha256 = None if rng.random() < 0.2 else f"{rng.getrandbits(256):064x}"
        parsed = RecordedOutcome.decode(outcome.encode(finished_at, sha256))
        assert RecordedOutcome.of(outcome, finished_at, sha256) == parsed


def test_a_record_keeps_seven_digits_and_milliseconds():
    outcome = ImageOutcome(predictions=(Prediction("archery", 2, 0.123456789),))
    kept = RecordedOutcome.of(outcome, 1_700_000_000.123456, "ab" * 32)
    assert kept.outcome.predictions[0].probability == 0.1234568
    assert kept.finished_at == 1_700_000_000.123
    assert RecordedOutcome.of(outcome) == RecordedOutcome(
        ImageOutcome(predictions=(Prediction("archery", 2, 0.1234568),)), 0.0, None
    )


def test_a_models_answer_is_recorded_as_it_is():
    from podium.stores.inference.triton import top_k_rows

    probabilities = np.random.default_rng(1).random((8, 100)).astype(np.float32)
    for predictions in top_k_rows(
        probabilities / probabilities.sum(axis=1, keepdims=True), 5, [str(i) for i in range(100)]
    ):
        outcome = ImageOutcome(predictions=predictions)
        kept = RecordedOutcome.of(outcome, 1_700_000_000.5, None)
        assert kept == RecordedOutcome.decode(outcome.encode(1_700_000_000.5))
        assert kept.outcome is outcome  # already as a record keeps it: nothing rebuilt
