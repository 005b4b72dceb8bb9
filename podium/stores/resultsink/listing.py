"""A delta job's listing and the rows it carries over from the last completed run of its name.

The listing (``listing.arrow`` beside the job's Parquet files, an Arrow IPC file: not a
file of rows, so ``*.parquet`` globs skip it) holds each entry of the source with its version
and its row's index in the job's files: the next run compares its own listing with it.
Carried rows are copied from the earlier job's files as they are (answer, digest, time,
model), renumbered after the job's own images, as parts written before the job starts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from podium.stores.resultsink.parts import ROW_GROUP_ROWS, job_batches, part_name
from podium.stores.resultsink.rows import RESULTS_SCHEMA, parquet_bytes
from podium.stores.resultsink.storage import Sink

LISTING = "listing.arrow"
LISTING_SCHEMA = pa.schema([("path", pa.string()), ("version", pa.string()), ("index", pa.int64())])


def write_listing(sink: Sink, job_id: str, entries: Sequence[tuple[str, str, int]]) -> None:
    """(path, version, index of its row) of every entry of the job's source."""
    paths, versions, indices = zip(*entries, strict=True) if entries else ((), (), ())
    table = pa.table([list(paths), list(versions), list(indices)], schema=LISTING_SCHEMA)
    buffer = io.BytesIO()
    with ipc.new_file(buffer, LISTING_SCHEMA, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    sink.write(job_id, LISTING, buffer.getvalue())


def read_listing(sink: Sink, job_id: str) -> dict[str, tuple[str, int]]:
    """path -> (version, index of its row); NotFound if the job has no listing."""
    table = ipc.open_file(io.BytesIO(sink.read(job_id, LISTING))).read_all()
    return {
        path: (version, index)
        for path, version, index in zip(
            table.column("path").to_pylist(),
            table.column("version").to_pylist(),
            table.column("index").to_pylist(),
            strict=True,
        )
    }


def carry_rows(sink: Sink, from_job: str, to_job: str, indices: Sequence[int], first_index: int) -> set[int]:
    """Copy ``from_job``'s rows of ``indices`` (ascending) into ``to_job``'s files, renumbered
    first_index, first_index + 1, ... in that order; returns the indices found."""
    wanted = pa.array(indices, pa.int64())
    found: set[int] = set()
    held: list[pa.Table] = []
    written = 0

    def flush() -> None:
        nonlocal held, written
        table = pa.concat_tables(held).unify_dictionaries().combine_chunks()
        numbered = pa.array(range(first_index + written, first_index + written + table.num_rows), pa.int64())
        table = table.set_column(0, RESULTS_SCHEMA.field("index"), numbered)
        sink.write(to_job, part_name(first_index + written), parquet_bytes(table))
        written += table.num_rows
        held = []

    for batch in job_batches(sink, from_job):
        picked = pa.Table.from_batches([batch]).filter(pc.is_in(batch.column("index"), value_set=wanted))
        if picked.num_rows:
            found.update(picked.column("index").to_pylist())
            held.append(picked)
        if sum(table.num_rows for table in held) >= ROW_GROUP_ROWS:
            flush()
    if held:
        flush()
    return found
