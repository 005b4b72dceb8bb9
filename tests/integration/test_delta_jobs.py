"""Delta jobs through the real parts: a folder and an s3:// prefix classified again after
files were added and changed; only those are classified, the rest carried over."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from podium.cluster import ClusterSettings, LocalCluster
from tests.integration.conftest import MODEL_NAME
from tests.support.cli import run_cli
from tests.support.sink import assert_rows_equal_lines, compacted_table

BUCKET = "growing"


@pytest.fixture(scope="module")
def cluster(model_repository, data_root, s3_server, tmp_path_factory):
    """One worker, the data root and one bucket readable, answers in `podium up`'s default
    results folder."""
    s3_server.create_bucket(Bucket=BUCKET)
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=1,
        web=False,
        run_dir=tmp_path_factory.mktemp("delta"),
        service={"model_name": MODEL_NAME, "data_roots": str(data_root), "s3_buckets": BUCKET},
    )
    with LocalCluster(settings) as running:
        yield running


def photo(seed: int) -> bytes:
    """A distinct small JPEG (no duplicates: the result cache must not answer for the delta)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def submit(cluster, source: list[str], output: Path) -> tuple[dict, list[dict]]:
    """A delta job of ``source`` (CLI arguments), waited for: its status and its result lines."""
    done = run_cli("submit", *source, "--incremental", "nightly", "--wait", "--show", "0",
                   "--output", str(output), "--gateway", cluster.gateway_address)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = next(
        line.split()[1] for line in done.stdout.splitlines() if line.startswith("job ") and "submitted" in line
    )
    status = run_cli("status", job_id, "--json", "--gateway", cluster.gateway_address)
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout), [json.loads(line) for line in output.read_text().splitlines()]


def answers(lines: list[dict]) -> dict[str, tuple]:
    return {line["path"]: (line["status"], [(p["label"], p["probability"]) for p in line["top_k"]]) for line in lines}


def test_a_grown_folder_is_classified_by_its_changes_and_its_files_hold_every_row(cluster, data_root, tmp_path):
    folder = data_root / "growing-archive"
    folder.mkdir()
    for i in range(200):
        (folder / f"{i:03d}.jpg").write_bytes(photo(i))
    first, first_lines = submit(cluster, ["--server-path", str(folder)], tmp_path / "first.jsonl")
    assert (first["total"], first["unchanged"], first["state"]) == (200, 0, "completed")
    for i in range(200, 210):
        (folder / f"{i:03d}.jpg").write_bytes(photo(i))
    (folder / "007.jpg").write_bytes(photo(1007))
    second, lines = submit(cluster, ["--server-path", str(folder)], tmp_path / "second.jsonl")
    assert (second["total"], second["unchanged"], second["succeeded"]) == (11, 199, 11)
    assert sorted(line["path"] for line in lines) == [f"{i:03d}.jpg" for i in range(210)]
    assert [line["path"] for line in lines[:11]] == ["007.jpg", *(f"{i:03d}.jpg" for i in range(200, 210))]
    before, now = answers(first_lines), answers(lines)
    assert all(now[path] == before[path] for path in before if path != "007.jpg")  # carried over as they were
    # The job's files hold one row per entry of the folder, the lines streamed in their order.
    table = compacted_table(f"file://{cluster.run_dir / 'results'}", second["id"])
    assert_rows_equal_lines(table, lines)
    finished = dict(zip(table.column("path").to_pylist(), table.column("finished_at").to_pylist(), strict=True))
    assert finished["006.jpg"].timestamp() <= first["finished_at"] < finished["007.jpg"].timestamp()


def test_a_grown_s3_prefix_is_classified_by_its_changes(cluster, s3_server, tmp_path):
    for i in range(12):
        s3_server.put_object(Bucket=BUCKET, Key=f"photos/{i:02d}.jpg", Body=photo(500 + i))
    first, _ = submit(cluster, [f"s3://{BUCKET}/photos"], tmp_path / "first.jsonl")
    assert (first["total"], first["unchanged"]) == (12, 0)
    s3_server.put_object(Bucket=BUCKET, Key="photos/03.jpg", Body=photo(900))  # a new ETag
    s3_server.put_object(Bucket=BUCKET, Key="photos/12.jpg", Body=photo(901))
    s3_server.delete_object(Bucket=BUCKET, Key="photos/05.jpg")
    second, lines = submit(cluster, [f"s3://{BUCKET}/photos"], tmp_path / "second.jsonl")
    assert (second["total"], second["unchanged"]) == (2, 10)
    assert sorted(line["path"] for line in lines) == sorted(f"{i:02d}.jpg" for i in range(13) if i != 5)


def test_a_completed_jobs_results_read_in_bulk_equal_those_read_one_by_one(cluster, data_root, tmp_path):
    folder = data_root / "bulk"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:02d}.jpg").write_bytes(photo(2000 + i))
    (folder / "broken.jpg").write_bytes(b"not a picture")
    status, _ = submit(cluster, ["--server-path", str(folder)], tmp_path / "job.jsonl")
    args = ("results", status["id"], "--gateway", cluster.gateway_address)
    bulk, one_by_one = run_cli(*args), run_cli(*args, "--follow")  # --follow reads GetResults
    assert bulk.returncode == one_by_one.returncode == 0, bulk.stderr + one_by_one.stderr
    assert bulk.stdout == one_by_one.stdout and len(bulk.stdout.splitlines()) == 41
    written = run_cli(*args, "--output", str(tmp_path / "job.parquet"))
    assert written.returncode == 0 and "41 results written" in written.stdout + written.stderr
    lines = [json.loads(line) for line in bulk.stdout.splitlines()]
    assert_rows_equal_lines(pq.read_table(tmp_path / "job.parquet"), lines)
