"""A completed job's results in bulk (Arrow batches of its result files' columns, from
``PodiumClient.result_batches``) as the records and JSON lines the one-by-one read gives.

Column by column: a million rows are streamed at well over 100,000 rows a second, where
building a record and encoding it per row manage about half of that. Probabilities and map
cells pass through float32, as they do on GetResults, so both reads give the same lines.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from json.encoder import encode_basestring as quoted  # json.dumps' own string encoding (non-ASCII kept)

import numpy as np

from podium.client.output import CAM_DECIMALS


class _Columns:
    """One batch's columns as Python lists; each row's predictions are a slice of the batch's.
    (Numbers through numpy and labels through their dictionary: pyarrow's to_pylist makes a
    Python object per value at a few hundred nanoseconds each.)"""

    def __init__(self, batch) -> None:
        import pyarrow.compute as pc

        column = batch.column
        top_k = column("top_k")
        offsets = top_k.offsets.to_numpy()
        self.offsets = (offsets - offsets[0]).tolist()  # a sliced batch's point into its parent's
        entries = top_k.flatten()
        labels = pc.dictionary_encode(entries.field("label"))
        self.label_names = labels.dictionary.to_pylist()
        self.label_codes = labels.indices.to_numpy().tolist()
        self.classes = entries.field("index").to_numpy().tolist()
        self.probabilities = rounded(entries.field("probability").to_numpy(), 7)
        ok = pc.equal(column("status"), "ok").to_numpy(zero_copy_only=False).tolist()
        self.rows = zip(
            column("path").to_pylist(),
            ok,
            _maybe_nulls(column("error")),
            _cells(column("cam")),
            self.offsets,
            self.offsets[1:],
            strict=False,  # one offset more than rows
        )


def rounded(values, decimals: int) -> list[float]:
    """``[round(float(numpy.float32(v)), decimals) for v in values]`` at numpy's speed
    (``decimals`` at most 7). A float32 times 10**decimals is exact in float64 (24 + 17 bits),
    so numpy's rint-then-divide rounds half to even on the exact value and lands on the
    double nearest the decimal, as Python's round does."""
    return np.round(np.asarray(values, dtype=np.float32).astype(np.float64), decimals).tolist()


def _cells(cam) -> list:
    """Each row's map cells rounded to CAM_DECIMALS, None where it has no map."""
    if cam.null_count == len(cam):
        return [None] * len(cam)
    offsets = cam.offsets.to_numpy()  # into the parent's values, for a sliced batch
    values = rounded(
        cam.values.slice(offsets[0], offsets[-1] - offsets[0]).to_numpy(zero_copy_only=False), CAM_DECIMALS
    )
    bounds = (offsets - offsets[0]).tolist()
    valid = cam.is_valid().to_numpy(zero_copy_only=False).tolist()
    return [values[a:b] if v else None for a, b, v in zip(bounds, bounds[1:], valid, strict=False)]


def _maybe_nulls(array) -> list:
    return [None] * len(array) if array.null_count == len(array) else array.to_pylist()


def batch_records(batch) -> Iterator[dict]:
    """``podium.client.output.result_record``'s records, from a batch."""
    columns = _Columns(batch)
    names = columns.label_names
    predictions = [
        {"label": names[code], "index": index, "probability": p}
        for code, index, p in zip(columns.label_codes, columns.classes, columns.probabilities, strict=True)
    ]
    for path, ok, error, cells, first, last in columns.rows:
        record = {"path": path, "status": "ok" if ok else "error", "top_k": predictions[first:last]}
        record["error"] = None if ok else error or ""
        if ok and cells is not None and last > first:
            side = math.isqrt(len(cells))
            record["cam"] = {"class_index": columns.classes[first], "grid": [side, side], "values": cells}
        yield record


def batch_lines(batch) -> Iterator[str]:
    """``json.dumps(record, ensure_ascii=False)`` of each of ``batch_records``, written directly."""
    columns = _Columns(batch)
    names = [quoted(name) for name in columns.label_names]
    predictions = [
        f'{{"label": {names[code]}, "index": {index}, "probability": {p!r}}}'
        for code, index, p in zip(columns.label_codes, columns.classes, columns.probabilities, strict=True)
    ]
    for path, ok, error, cells, first, last in columns.rows:
        top_k = ", ".join(predictions[first:last])
        line = f'{{"path": {quoted(path)}, "status": "{"ok" if ok else "error"}", "top_k": [{top_k}], "error": '
        line += "null" if ok else quoted(error or "")
        if ok and cells is not None and last > first:
            side = math.isqrt(len(cells))
            values = ", ".join(map(repr, cells))
            line += (
                f', "cam": {{"class_index": {columns.classes[first]}, "grid": [{side}, {side}], "values": [{values}]}}'
            )
        yield line + "}"
