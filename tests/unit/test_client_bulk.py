"""The bulk read: numpy's rounding equals Python's round value for value, and the lines made
column by column in Arrow are json.dumps of the records, whatever the probabilities."""

import json

import numpy as np
import pytest

from podium.client.bulk import batch_lines, batch_records, rounded
from podium.core.jobs import ActivationMap, ImageOutcome, Prediction, RecordedOutcome
from podium.stores.resultsink.rows import ResultRow, rows_table


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


def _table(rows: int):
    """A table of result rows whose probabilities reach every way a number is printed: 0, 1,
    exponents, the 1e-4 boundary, many digits; labels and paths that JSON must escape."""
    rng = np.random.default_rng(11)
    special = [0.0, 1.0, 1e-4, 9.99e-5, 1e-7, 5e-8, 0.5, 0.12345678, 0.99999999, -2e-5, 1.5]
    probabilities = np.concatenate([special, rng.random(rows * 2), 10.0 ** rng.uniform(-9, 0, rows * 2)])
    labels = ['rugby "union"', "polo é", "tab\there", "plain"]
    result_rows = []
    for index in range(rows):
        if index % 7 == 3:
            outcome = ImageOutcome(error=f'not a "recognised" image {index}')
        else:
            picks = probabilities[(index * 5) % (len(probabilities) - 5) :][: 1 + index % 5]
            predictions = tuple(Prediction(labels[i % 4], (index + i) % 100, float(p)) for i, p in enumerate(picks))
            cam = ActivationMap.of(predictions[0].index, (2, 2), [1.0, 0.5, 0.0, 0.25]) if index % 5 == 0 else None
            outcome = ImageOutcome(predictions=predictions, cam=cam)
        path = f"folder/é {index}.jpg" if index % 2 else f'a "q"\\{index}.png'
        result_rows.append(ResultRow(index, path, RecordedOutcome(outcome, 1.0, None)))
    return rows_table(result_rows, "m:1")


def test_bulk_lines_are_json_of_the_bulk_records_for_every_kind_of_number():
    table = _table(2_000)
    for batch in table.to_batches(max_chunksize=300) + [table.slice(17, 101).combine_chunks().to_batches()[0]]:
        records = list(batch_records(batch))
        assert list(batch_lines(batch)) == [json.dumps(record, ensure_ascii=False) for record in records]
        stored = [p["probability"] for r in batch.column("top_k").to_pylist() for p in r]
        assert [p["probability"] for r in records for p in r["top_k"]] == [
            round(float(np.float32(p)), 7) for p in stored
        ]
    assert any("e-" in line for line in batch_lines(table.to_batches()[0]))  # exponents were reached
