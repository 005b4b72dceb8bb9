"""The results sink: every answer of a job as Parquet files on disk or object storage.

Workers write one part file per finished chunk before the chunk counts as done; the job
is complete once every part landed, and its parts are then compacted into one file
(``podium.stores.resultsink.parts``). The columns are ``podium.stores.resultsink.rows.RESULTS_SCHEMA``.
"""

from importlib import import_module

from podium.stores.resultsink.storage import FileSink, S3Sink, Sink, SinkUnavailable, open_sink

# What needs pyarrow is imported when first used: a process that only names the sink (a
# Celery worker's parent, a gateway without result files) does not carry it (~36 MB each).
_LAZY = {
    **dict.fromkeys(
        (
            "COMPACTED",
            "batches_from",
            "chunk_rows",
            "compact",
            "compact_quietly",
            "job_batches",
            "job_table",
            "part_name",
            "part_names",
            "remove_if_deleted",
            "rows_from",
            "write_part",
        ),
        "podium.stores.resultsink.parts",
    ),
    **dict.fromkeys(
        ("COLUMNS", "RESULTS_SCHEMA", "ResultRow", "ipc_batches", "ipc_bytes", "rows_table", "table_rows"),
        "podium.stores.resultsink.rows",
    ),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)


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
    "listing",
    "open_sink",
    "part_name",
    "part_names",
    "parts",
    "remove_if_deleted",
    "rows",
    "rows_from",
    "rows_table",
    "storage",
    "table_rows",
    "write_part",
]
