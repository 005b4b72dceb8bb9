"""Result files read back as the JSONL lines `podium results` writes, for comparing the two."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa

from podium.stores.resultsink import COLUMNS, COMPACTED, job_table, open_sink


def as_records(table: pa.Table) -> list[dict]:
    """Each row as a result line: path, status, top_k, error."""
    assert tuple(table.column_names) == COLUMNS
    return [
        {"path": row["path"], "status": row["status"], "top_k": row["top_k"], "error": row["error"]}
        for row in table.to_pylist()
    ]


def assert_rows_equal_lines(table: pa.Table, lines: list[dict]) -> None:
    """One row per line, in image order, with the same answer (probabilities to float32's precision:
    the lines' values came through the API's float)."""
    assert table.column("index").to_pylist() == list(range(len(lines)))
    for row, line in zip(as_records(table), lines, strict=True):
        assert (row["path"], row["status"], row["error"]) == (line["path"], line["status"], line["error"])
        assert [(p["label"], p["index"]) for p in row["top_k"]] == [(p["label"], p["index"]) for p in line["top_k"]]
        for mine, theirs in zip(row["top_k"], line["top_k"], strict=True):
            assert abs(mine["probability"] - theirs["probability"]) <= 1e-6, row["path"]


def compacted(names: Callable[[], list[str]], timeout_s: float = 60) -> list[str]:
    """The job's file names once its parts were compacted (just after the job completed)."""
    deadline = time.monotonic() + timeout_s
    while (found := names()) != ["results.parquet"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def compacted_table(results_url: str, job_id: str) -> pa.Table:
    """A completed job's rows, from its compacted file (waiting for the compaction)."""
    sink = open_sink(results_url)
    assert compacted(lambda: sink.names(job_id)) == [COMPACTED]
    return job_table(sink, job_id)
