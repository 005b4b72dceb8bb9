"""The results sink: every answer of a job as Parquet files on disk or object storage.

Workers write one part file per finished chunk before the chunk counts as done; the job
is complete once every part landed, and its parts are then compacted into one file
(``resultsink.parts``). The columns are ``resultsink.rows.RESULTS_SCHEMA``.
"""

from resultsink.parts import (
    COMPACTED,
    batches_from,
    chunk_rows,
    compact,
    compact_quietly,
    job_batches,
    job_table,
    part_name,
    part_names,
    rows_from,
    write_part,
)
from resultsink.rows import COLUMNS, RESULTS_SCHEMA, ResultRow, ipc_batches, ipc_bytes, rows_table, table_rows
from resultsink.storage import FileSink, S3Sink, Sink, SinkUnavailable, open_sink

__all__ = [
    "COLUMNS",
    "COMPACTED",
    "RESULTS_SCHEMA",
    "FileSink",
    "ResultRow",
    "S3Sink",
    "Sink",
    "SinkUnavailable",
    "batches_from",
    "chunk_rows",
    "compact",
    "compact_quietly",
    "ipc_batches",
    "ipc_bytes",
    "job_batches",
    "job_table",
    "open_sink",
    "part_name",
    "part_names",
    "rows_from",
    "rows_table",
    "table_rows",
    "write_part",
]
