"""A job's result files: one part per chunk while it runs, one compacted file once it completed.

``part-<first index, 12 digits>.parquet`` holds one chunk's rows: the names sort as the
images do. ``results.parquet`` holds them all, sorted by index; it is written only after
every part landed, and the parts are removed only after it landed, so a reader that finds
it reads it alone (a part left by an interrupted clean-up repeats rows it already holds).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from resultsink.rows import RESULTS_SCHEMA, WRITE_OPTIONS, ResultRow, parquet_bytes, read_parquet, rows_table
from resultsink.storage import Sink

COMPACTED = "results.parquet"
PART_PREFIX = "part-"
# Rows per row group of a compacted file: parts hold a chunk each (16-256 rows).
ROW_GROUP_ROWS = 65_536


def part_name(first_index: int) -> str:
    return f"{PART_PREFIX}{first_index:012d}.parquet"


def write_part(sink: Sink, job_id: str, first_index: int, rows: Sequence[ResultRow], model: str) -> None:
    """One chunk's rows as one file; a redelivered chunk writes the same bytes again."""
    sink.write(job_id, part_name(first_index), parquet_bytes(rows_table(rows, model)))


def part_names(sink: Sink, job_id: str) -> list[str]:
    return [name for name in sink.names(job_id) if name.startswith(PART_PREFIX)]


def compact(sink: Sink, job_id: str) -> bool:
    """Merge the job's parts into COMPACTED (sorted by index), then remove the parts.
    Idempotent: run again after an interruption, it finishes the job. False: nothing to do."""
    names = sink.names(job_id)
    parts = [name for name in names if name.startswith(PART_PREFIX)]
    if not parts:
        return False
    if COMPACTED not in names:
        with sink.writing(job_id, COMPACTED) as path, pq.ParquetWriter(path, RESULTS_SCHEMA, **WRITE_OPTIONS) as out:
            held: list[pa.Table] = []
            for name in parts:  # the names sort as the indices do
                held.append(read_parquet(sink.read(job_id, name)))
                if sum(table.num_rows for table in held) >= ROW_GROUP_ROWS:
                    out.write_table(_merged(held))
                    held = []
            if held:
                out.write_table(_merged(held))
    sink.remove(job_id, parts)
    return True


def _merged(tables: list[pa.Table]) -> pa.Table:
    # One row group of many parts (readers skip row groups by their statistics).
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def job_batches(sink: Sink, job_id: str) -> Iterator[pa.RecordBatch]:
    """The job's rows in index order, batch by batch: the compacted file, else the parts."""
    names = sink.names(job_id)
    for name in [COMPACTED] if COMPACTED in names else [n for n in names if n.startswith(PART_PREFIX)]:
        yield from read_parquet(sink.read(job_id, name)).to_batches()


def job_table(sink: Sink, job_id: str) -> pa.Table:
    """Every row of the job (for tests, exports and small jobs; large ones: job_batches)."""
    return pa.Table.from_batches(list(job_batches(sink, job_id)), schema=RESULTS_SCHEMA)
