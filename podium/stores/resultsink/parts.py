"""A job's result files: one part per chunk while it runs, one compacted file once it completed.

``part-<first index, 12 digits>.parquet`` holds one chunk's rows: the names sort as the
images do. ``results.parquet`` holds them all, sorted by index; it is written only after
every part landed, and the parts are removed only after it landed, so a reader that finds
it reads it alone (a part left by an interrupted clean-up repeats rows it already holds).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from podium.core.errors import NotFound
from podium.stores.resultsink.rows import (
    RESULTS_SCHEMA,
    WRITE_OPTIONS,
    ResultRow,
    batch_rows,
    parquet_bytes,
    read_parquet,
    rows_table,
    table_rows,
)
from podium.stores.resultsink.storage import Sink, SinkUnavailable

log = logging.getLogger(__name__)


COMPACTED = "results.parquet"
PART_PREFIX = "part-"
# Rows per row group of a compacted file: parts hold a chunk each (16-256 rows).
ROW_GROUP_ROWS = 65_536
# Parts held before they are merged into one table while a row group fills: compacting
# 12,500 parts of 16 rows left the process 145 MiB bigger holding 4,096 at a time, 19 MiB
# merging every 64 (each small table costs far more than its rows), in the same time.
MERGE_PARTS = 64
# Rows per batch a reader is handed (a gRPC message holds one: well under its 4 MiB).
BATCH_ROWS = 4096


def part_name(first_index: int) -> str:
    return f"{PART_PREFIX}{first_index:012d}.parquet"


def write_part(sink: Sink, job_id: str, first_index: int, rows: Sequence[ResultRow], model: str) -> None:
    """One chunk's rows as one file; a redelivered chunk writes the same bytes again."""
    sink.write(job_id, part_name(first_index), parquet_bytes(rows_table(rows, model)))


def part_first(name: str) -> int:
    """The first index a part holds, from its name."""
    return int(name[len(PART_PREFIX) : -len(".parquet")])


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
                if len(held) >= MERGE_PARTS:
                    held = [_merged(held)]
                if sum(table.num_rows for table in held) >= ROW_GROUP_ROWS:
                    out.write_table(_merged(held))
                    held = []
            if held:
                out.write_table(_merged(held))
    sink.remove(job_id, parts)
    return True


def compact_quietly(sink: Sink, job_id: str) -> bool:
    """``compact``, for a job that ended: if the sink is away, its parts stay (readers merge
    them, and a gateway tries again later). Whether it was done."""
    try:
        compact(sink, job_id)
    except SinkUnavailable as exc:
        log.warning("job %s: its result files were not compacted (%s); its parts stay for now", job_id, exc)
        return False
    except NotFound:  # a part went while it was merged: another compaction finished, or the job was deleted
        log.info("job %s: its result files were compacted or removed meanwhile", job_id)
    return True


class JobStates(Protocol):
    """What remove_if_deleted asks of the job store (the sink does not know the store)."""

    def state(self, job_id: str) -> object | None: ...


def remove_if_deleted(store: JobStates, sink: Sink, job_id: str) -> None:
    """After writing the job's files: if the job was deleted meanwhile, they go too. Its
    deletion removes the files after the job's keys, so a file written before this look is
    gone either way, and no file of a deleted job outlives it."""
    if store.state(job_id) is not None:
        return
    try:
        sink.remove_job(job_id)
    except SinkUnavailable as exc:
        log.warning("job %s was deleted, but its result files could not be removed (%s)", job_id, exc)


def _merged(tables: list[pa.Table]) -> pa.Table:
    # One row group of many parts (readers skip row groups by their statistics).
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def job_batches(sink: Sink, job_id: str) -> Iterator[pa.RecordBatch]:
    """The job's rows in index order, batch by batch: the compacted file, else the parts."""
    return batches_from(sink, job_id, 0)


def job_table(sink: Sink, job_id: str) -> pa.Table:
    """Every row of the job (for tests, exports and small jobs; large ones: job_batches)."""
    return pa.Table.from_batches(list(job_batches(sink, job_id)), schema=RESULTS_SCHEMA)


def chunk_rows(sink: Sink, job_id: str, first_index: int, count: int) -> dict[int, ResultRow] | None:
    """The rows of the chunk of ``count`` images from ``first_index``, by index: its part, or
    the compacted file's once the part went; None if neither is there (the chunk's file has
    not landed)."""
    try:
        return {row.index: row for row in table_rows(read_parquet(sink.read(job_id, part_name(first_index))))}
    except NotFound:
        pass
    try:
        data = sink.read(job_id, COMPACTED)
    except NotFound:
        return None
    batches = _compacted_batches(data, first_index, first_index + count, BATCH_ROWS)
    return {row.index: row for batch in batches for row in batch_rows(batch)}


def rows_from(sink: Sink, job_id: str, start: int) -> Iterator[ResultRow]:
    """A completed job's rows from index ``start`` on, in index order (see ``batches_from``)."""
    for batch in batches_from(sink, job_id, start):
        yield from batch_rows(batch)


def batches_from(sink: Sink, job_id: str, start: int, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """A completed job's rows from index ``start`` on, in index order, at most ``rows`` a
    batch: from its parts until they are compacted (a part gone meanwhile: the compacted
    file from there on), then from the compacted file."""
    index = start
    names = sink.names(job_id)
    if COMPACTED not in names:
        parts = [name for name in names if name.startswith(PART_PREFIX)]
        firsts = [part_first(name) for name in parts]
        for position, name in enumerate(parts):
            if position + 1 < len(firsts) and firsts[position + 1] <= index:
                continue  # wholly before start
            try:
                table = read_parquet(sink.read(job_id, name))
            except NotFound:
                break  # compacted meanwhile
            for batch in _from_index(table, index, rows):
                yield batch
                index = batch.column(0)[-1].as_py() + 1
        else:
            return
    yield from _compacted_batches(sink.read(job_id, COMPACTED), index, None, rows)


def _from_index(table: pa.Table, start: int, rows: int, stop: int | None = None) -> Iterator[pa.RecordBatch]:
    """The table's rows of indices start..stop-1, at most ``rows`` a batch."""
    kept = pc.greater_equal(table.column("index"), start)
    if stop is not None:
        kept = pc.and_(kept, pc.less(table.column("index"), stop))
    for batch in table.filter(kept).combine_chunks().to_batches(max_chunksize=rows):
        if batch.num_rows:
            yield batch


def _compacted_batches(data: bytes, start: int, stop: int | None, rows: int) -> Iterator[pa.RecordBatch]:
    """Rows start..stop-1 of a compacted file, reading only the row groups that hold them."""
    parquet = pq.ParquetFile(io.BytesIO(data))
    for group in _groups_holding(parquet, start, stop):
        yield from _from_index(parquet.read_row_group(group).cast(RESULTS_SCHEMA), start, rows, stop)


def _groups_holding(parquet: pq.ParquetFile, start: int, stop: int | None) -> Iterator[int]:
    """The row groups of a compacted file that may hold indices start..stop-1 (by their statistics)."""
    column = parquet.schema_arrow.get_field_index("index")
    for group in range(parquet.num_row_groups):
        stats = parquet.metadata.row_group(group).column(column).statistics
        if stats is not None and stats.has_min_max and (stats.max < start or (stop is not None and stats.min >= stop)):
            continue
        yield group
