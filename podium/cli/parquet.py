"""`podium results --format parquet`: the streamed results as one Parquet file with the
results sink's columns (podium.stores.resultsink.rows), written batch by batch, so a job of millions of
images never sits in memory whole; and the bulk read of a completed job's result files
(GetResultTable), which every format uses when it can."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from podium.client import PodiumClient
from podium.client.records import ImageResult, own
from podium.core.errors import FailedPrecondition
from podium.core.jobs import ActivationMap, ImageOutcome, Prediction, RecordedOutcome
from podium.core.proto import podium_pb2 as pb

BATCH_ROWS = 10_000


def write_parquet(path: Path, results: Iterable[ImageResult], model: str) -> Iterator[ImageResult]:
    """Write ``results`` to ``path``, yielding each as written."""
    try:
        import pyarrow.parquet as pq

        from podium.stores.resultsink.rows import RESULTS_SCHEMA, WRITE_OPTIONS, ResultRow, rows_table
    except ImportError:
        raise FailedPrecondition(
            "writing Parquet needs pyarrow", hint="pip install 'podium[parquet]' (or pyarrow)"
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, RESULTS_SCHEMA, **WRITE_OPTIONS) as writer:
        rows: list[ResultRow] = []
        for result in results:
            rows.append(ResultRow(result.index, result.path, _recorded(result)))
            if len(rows) >= BATCH_ROWS:
                writer.write_table(rows_table(rows, model))
                rows = []
            yield result
        if rows:
            writer.write_table(rows_table(rows, model))


def bulk_batches(client: PodiumClient, job_id: str) -> Iterator | None:
    """The job's results as Arrow batches, if the gateway has them all in result files and
    pyarrow is installed; else None (read them one by one)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    batches = client.result_batches(job_id)
    try:
        first = next(batches, None)
    except FailedPrecondition:
        return None  # still running, cancelled, failed, or no result files
    return itertools.chain([] if first is None else [first], batches)


def write_batches(path: Path, batches: Iterable) -> int:
    """The batches as one Parquet file with the sink's columns; how many rows."""
    import pyarrow.parquet as pq

    from podium.stores.resultsink.rows import RESULTS_SCHEMA, WRITE_OPTIONS

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(path, RESULTS_SCHEMA, **WRITE_OPTIONS) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _recorded(result: ImageResult) -> RecordedOutcome:
    result = own(ImageResult, result)
    if result.status != pb.IMAGE_STATUS_OK:
        outcome = ImageOutcome(error=result.error)
    else:
        cam = None
        if result.cam is not None:
            grid = (result.cam.rows, result.cam.cols)
            cam = ActivationMap.of(result.cam.class_index, grid, result.cam.values)
        predictions = tuple(Prediction(p.label, p.index, p.probability) for p in result.top_k)
        outcome = ImageOutcome(predictions=predictions, cam=cam)
    return RecordedOutcome(outcome, result.finished_at, result.sha256 or None)
