"""A chunk's answers as an Arrow table in the sink's one schema (docs/archive.md names the columns).

The table is a pure function of the recorded outcomes, so a redelivered chunk writes the
same file again: rows in image order, times and digests as the job store recorded them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from podium.core.jobs import ActivationMap, ImageOutcome, Prediction, RecordedOutcome
from podium.core.jobs.model import MAP_LEVELS

TOP_K_TYPE = pa.struct([("label", pa.string()), ("index", pa.int32()), ("probability", pa.float64())])
# Labels repeat across millions of rows: dictionary-encoded in memory and in the file.
LABEL_TYPE = pa.dictionary(pa.int32(), pa.string())

RESULTS_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("path", pa.string()),
        ("status", pa.string()),  # "ok" | "error"
        ("label", LABEL_TYPE),  # top-1; null for an error
        ("probability", pa.float64()),  # top-1's
        ("top_k", pa.list_(TOP_K_TYPE)),
        ("error", pa.string()),
        ("cam", pa.list_(pa.float32())),  # the activation map's cells, row-major; null unless explained
        ("sha256", pa.string()),  # of the image's bytes; null where they could not be read
        ("model", LABEL_TYPE),  # name:version
        ("finished_at", pa.timestamp("ms", tz="UTC")),
    ]
)
COLUMNS = tuple(RESULTS_SCHEMA.names)
# The writer's settings are fixed: the same rows always make the same bytes.
WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


@dataclass(frozen=True)
class ResultRow:
    """One image's recorded answer and its place in the job."""

    index: int
    path: str
    recorded: RecordedOutcome


def rows_table(rows: Sequence[ResultRow], model: str) -> pa.Table:
    """The rows, sorted by index, as a table of RESULTS_SCHEMA."""
    rows = sorted(rows, key=lambda row: row.index)
    outcomes = [row.recorded.outcome for row in rows]
    columns = {
        "index": [row.index for row in rows],
        "path": [row.path for row in rows],
        "status": ["ok" if o.ok else "error" for o in outcomes],
        "label": [o.predictions[0].label if o.ok and o.predictions else None for o in outcomes],
        "probability": [o.predictions[0].probability if o.ok and o.predictions else None for o in outcomes],
        "top_k": [
            [{"label": p.label, "index": p.index, "probability": p.probability} for p in o.predictions]
            for o in outcomes
        ],
        "error": [o.error for o in outcomes],
        "cam": [None if o.cam is None else list(o.cam.values) for o in outcomes],
        "sha256": [row.recorded.sha256 for row in rows],
        "model": [model] * len(rows),
        "finished_at": [round(row.recorded.finished_at * 1000) for row in rows],
    }
    arrays = []
    for field in RESULTS_SCHEMA:
        values = columns[field.name]
        if pa.types.is_dictionary(field.type):
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one Parquet file's bytes."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **WRITE_OPTIONS)
    return buffer.getvalue()


def ipc_bytes(batch: pa.RecordBatch) -> bytes:
    """One batch as a whole Arrow IPC stream (schema, batch), its buffers zstd-compressed."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def ipc_batches(data: bytes) -> list[pa.RecordBatch]:
    """``ipc_bytes``' batches, back."""
    return list(pa.ipc.open_stream(data))


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data), schema=RESULTS_SCHEMA)


def table_rows(table: pa.Table) -> Iterator[ResultRow]:
    """The rows of a table of RESULTS_SCHEMA as the records they were made from (rows_table's
    inverse: a map is the top-1 class's, on a square grid). Read column by column: a
    row-wise conversion of the nested columns costs ten times as much."""
    for batch in table.to_batches():
        yield from batch_rows(batch)


def batch_rows(batch: pa.RecordBatch) -> Iterator[ResultRow]:
    """``table_rows`` of one batch."""
    column = batch.column
    top_k = column("top_k")
    # A sliced batch's list offsets point into its parent's values: flatten() holds its own.
    offsets = top_k.offsets.to_pylist()
    offsets = [offset - offsets[0] for offset in offsets]
    entries = top_k.flatten()
    labels = entries.field("label").to_pylist()
    classes = entries.field("index").to_numpy().tolist()  # numpy: to_pylist makes each number slowly
    probabilities = entries.field("probability").to_numpy().tolist()
    cams = column("cam").to_pylist()
    finished = column("finished_at").cast(pa.int64()).to_pylist()
    columns = zip(
        column("index").to_pylist(),
        column("path").to_pylist(),
        column("status").to_pylist(),
        column("error").to_pylist(),
        column("sha256").to_pylist(),
        strict=True,
    )
    for row, (index, path, status, error, sha256) in enumerate(columns):
        if status != "ok":
            outcome = ImageOutcome(error=error or "")
        else:
            first, last = offsets[row], offsets[row + 1]
            predictions = tuple(map(Prediction, labels[first:last], classes[first:last], probabilities[first:last]))
            outcome = ImageOutcome(predictions=predictions, cam=_map(cams[row], predictions))
        millis = finished[row]
        yield ResultRow(index, path, RecordedOutcome(outcome, millis / 1000 if millis is not None else 0.0, sha256))


def _map(cells: list[float] | None, predictions: tuple[Prediction, ...]) -> ActivationMap | None:
    if cells is None or not predictions:
        return None
    side = math.isqrt(len(cells))
    return ActivationMap(predictions[0].index, (side, side), bytes(round(value * MAP_LEVELS) for value in cells))
