"""A completed job's results in bulk (Arrow batches of its result files' columns, from
``PodiumClient.result_batches``) as the records and JSON lines the one-by-one read gives.

Column by column: a million rows are streamed at well over 100,000 rows a second, where
building a record and encoding it per row manage about half of that. Probabilities and map
cells pass through float32, as they do on GetResults, so both reads give the same lines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from json.encoder import encode_basestring as quoted  # json.dumps' own string encoding (non-ASCII kept)

import numpy as np

from podium.client.output import CAM_DECIMALS


class _Columns:
    """One batch's rows (path, ok, error, map cells, first and last prediction), each row's
    predictions a slice of the batch's. (Through numpy, and labels through their dictionary:
    pyarrow's to_pylist makes a Python object per value at about a microsecond each.)"""

    def __init__(self, batch) -> None:
        import pyarrow.compute as pc

        column = batch.column
        self.top_k = column("top_k")
        self.entries = self.top_k.flatten()
        self.classes = self.entries.field("index").to_numpy()
        offsets = self.top_k.offsets.to_numpy()
        self.offsets = offsets - offsets[0]  # a sliced batch's point into its parent's
        bounds = self.offsets.tolist()
        ok = pc.equal(column("status"), "ok").to_numpy(zero_copy_only=False).tolist()
        self.rows = zip(
            _strings(column("path")),
            ok,
            _strings(column("error")),
            _cells(column("cam")),
            bounds,
            bounds[1:],
            strict=False,  # one offset more than rows
        )

    def _labels(self):
        """The predictions' labels as a dictionary array: each name once, a code per prediction."""
        import pyarrow.compute as pc

        return pc.dictionary_encode(self.entries.field("label"))

    def _probabilities(self) -> np.ndarray:
        return _rounded_array(self.entries.field("probability").to_numpy(), 7)

    def predictions(self) -> list[dict]:
        """Every row's predictions in one list, as the records hold them."""
        labels = self._labels()
        names = labels.dictionary.to_pylist()
        return [
            {"label": names[code], "index": index, "probability": p}
            for code, index, p in zip(
                labels.indices.to_numpy().tolist(), self.classes.tolist(), self._probabilities().tolist(), strict=True
            )
        ]

    def prediction_texts(self) -> list[str]:
        """Each row's predictions as the JSON between its brackets, made column by column
        in Arrow (formatting half a million numbers one by one in Python took most of a read)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        labels = self._labels()
        names = pa.array([quoted(name) for name in labels.dictionary.to_pylist()], pa.string())
        p = self._probabilities()
        texts = pc.cast(pa.array(p), pa.string())
        # Arrow writes the shortest digits as repr does, but 0, 1 and numbers under 1e-4
        # without Python's ".0" and exponent. Rounded to 7 decimals, those under 1e-4 are
        # k / 10**7 for k < 1,000 (most of a confident model's top-k): from a table of their
        # reprs; anything else (1, nan) from repr itself.
        small = (p >= 0) & (p < 1e-4)
        if small.any():
            tenth_micros = np.rint(p[small] * 10**7).astype(np.int64)
            texts = pc.replace_with_mask(texts, pa.array(small), _small_texts().take(pa.array(tenth_micros)))
        odd = ~(small | ((p >= 1e-4) & (p < 1)))
        if odd.any():
            texts = pc.replace_with_mask(texts, pa.array(odd), pa.array(map(repr, p[odd].tolist()), pa.string()))
        items = pc.binary_join_element_wise(
            '{"label": ',
            names.take(labels.indices),
            ', "index": ',
            pc.cast(self.entries.field("index"), pa.string()),
            ', "probability": ',
            texts,
            "}",
            "",  # the separator between the pieces
        )
        per_row = pa.ListArray.from_arrays(pa.array(self.offsets, pa.int32()), items)
        return _strings(pc.binary_join(per_row, ", "))


@functools.cache
def _small_texts():
    """repr(k / 10**7) for k below 1,000, as an Arrow array."""
    import pyarrow as pa

    return pa.array([repr(k / 10**7) for k in range(1000)], pa.string())


def rounded(values, decimals: int) -> list[float]:
    """``[round(float(numpy.float32(v)), decimals) for v in values]`` at numpy's speed
    (``decimals`` at most 7). A float32 times 10**decimals is exact in float64 (24 + 17 bits),
    so numpy's rint-then-divide rounds half to even on the exact value and lands on the
    double nearest the decimal, as Python's round does."""
    return _rounded_array(values, decimals).tolist()


def _rounded_array(values, decimals: int) -> np.ndarray:
    return np.round(np.asarray(values, dtype=np.float32).astype(np.float64), decimals)


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


def _strings(array) -> list:
    """A string column's values (None for nulls), through numpy: ten times to_pylist's speed."""
    return [None] * len(array) if array.null_count == len(array) else array.to_numpy(zero_copy_only=False).tolist()


def batch_records(batch) -> Iterator[dict]:
    """``podium.client.output.result_record``'s records, from a batch."""
    columns = _Columns(batch)
    predictions = columns.predictions()
    for path, ok, error, cells, first, last in columns.rows:
        record = {"path": path, "status": "ok" if ok else "error", "top_k": predictions[first:last]}
        record["error"] = None if ok else error or ""
        if ok and cells is not None and last > first:
            side = math.isqrt(len(cells))
            record["cam"] = {"class_index": int(columns.classes[first]), "grid": [side, side], "values": cells}
        yield record


def batch_lines(batch) -> Iterator[str]:
    """``json.dumps(record, ensure_ascii=False)`` of each of ``batch_records``, written directly."""
    columns = _Columns(batch)
    for (path, ok, error, cells, first, last), top_k in zip(columns.rows, columns.prediction_texts(), strict=True):
        line = f'{{"path": {quoted(path)}, "status": "{"ok" if ok else "error"}", "top_k": [{top_k}], "error": '
        line += "null" if ok else quoted(error or "")
        if ok and cells is not None and last > first:
            side = math.isqrt(len(cells))
            values = ", ".join(map(repr, cells))
            line += (
                f', "cam": {{"class_index": {columns.classes[first]}, "grid": [{side}, {side}], "values": [{values}]}}'
            )
        yield line + "}"
