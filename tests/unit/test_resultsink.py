"""The results sink: part files written whole and the same every time, compacted in index
order, read back in image order; a folder or an S3 bucket (moto's in-process mock)."""

from __future__ import annotations

import os
import time

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from gateway.retention import Retention
from podium.core.errors import InvalidArgument, NotFound
from podium.core.jobs import ActivationMap, ImageOutcome, Prediction, RecordedOutcome
from podium.stores.jobstore.schema import ACTIVE_JOBS_KEY
from podium.stores.resultsink import (
    COLUMNS,
    COMPACTED,
    FileSink,
    ResultRow,
    SinkUnavailable,
    chunk_rows,
    compact,
    job_table,
    open_sink,
    part_name,
    part_names,
    rows_from,
    write_part,
)
from tests.support.fakes import fake_store

JOB = "0123456789abcdef0123456789abcdef"
OK = ImageOutcome(
    predictions=(Prediction("rugby", 70, 0.8125), Prediction("polo", 65, 0.125)),
    cam=ActivationMap.of(70, (2, 2), [1.0, 0.5, 0.0, 0.25]),
)
BAD = ImageOutcome(error="not a recognised image format")
NOW = 1_764_000_000.123


def rows(first: int, count: int) -> list[ResultRow]:
    made = []
    for index in range(first, first + count):
        outcome = BAD if index % 5 == 0 else OK
        digest = None if outcome is BAD else f"{index:064x}"
        made.append(ResultRow(index, f"photos/{index}.jpg", RecordedOutcome(outcome, NOW + index, digest)))
    return made


def write_job(sink, total: int, chunk: int) -> None:
    for first in range(0, total, chunk):
        # Rows arrive in any order (a chunk's images finish as they do); files are sorted.
        write_part(sink, JOB, first, list(reversed(rows(first, min(chunk, total - first)))), "resnet50_sports:3")


def test_the_columns_are_the_contract():
    assert COLUMNS == (
        "index",
        "path",
        "status",
        "label",
        "probability",
        "top_k",
        "error",
        "cam",
        "sha256",
        "model",
        "finished_at",
    )


def test_a_part_holds_its_chunks_rows_in_index_order(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 10, 4)
    assert part_names(sink, JOB) == [part_name(0), part_name(4), part_name(8)]
    table = pq.read_table(tmp_path / JOB / part_name(4))
    first, second = table.to_pylist()[:2]
    assert [first["index"], second["index"]] == [4, 5]
    assert first == {
        "index": 4,
        "path": "photos/4.jpg",
        "status": "ok",
        "label": "rugby",
        "probability": 0.8125,
        "top_k": [
            {"label": "rugby", "index": 70, "probability": 0.8125},
            {"label": "polo", "index": 65, "probability": 0.125},
        ],
        "error": None,
        "cam": first["cam"],
        "sha256": f"{4:064x}",
        "model": "resnet50_sports:3",
        "finished_at": first["finished_at"],
    }
    assert first["finished_at"].timestamp() == pytest.approx(NOW + 4, abs=1e-3)
    assert first["cam"] == pytest.approx([1.0, 128 / 255, 0.0, 64 / 255], abs=1e-7)  # float32 cells
    assert second["status"] == "error" and second["error"] == BAD.error
    assert second["label"] is None and second["probability"] is None and second["sha256"] is None
    assert table.schema.field("label").type.value_type == "string"  # dictionary-encoded
    assert pq.ParquetFile(tmp_path / JOB / part_name(4)).metadata.row_group(0).column(0).compression == "ZSTD"


def test_a_redelivered_chunk_writes_the_same_bytes(tmp_path):
    sink = FileSink(tmp_path)
    write_part(sink, JOB, 0, rows(0, 16), "m:1")
    first = (tmp_path / JOB / part_name(0)).read_bytes()
    write_part(sink, JOB, 0, list(reversed(rows(0, 16))), "m:1")
    assert (tmp_path / JOB / part_name(0)).read_bytes() == first


def test_compaction_merges_parts_in_index_order_and_removes_them(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 50, 16)
    before = job_table(sink, JOB)
    assert compact(sink, JOB) is True
    assert sorted(os.listdir(tmp_path / JOB)) == [COMPACTED]
    after = job_table(sink, JOB)
    assert after.equals(before)
    assert after.column("index").to_pylist() == list(range(50))
    assert compact(sink, JOB) is False  # nothing left to do


def test_an_interrupted_compaction_is_finished_and_its_leftover_parts_are_not_read_twice(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 40, 16)
    compact(sink, JOB)
    write_job(sink, 40, 16)  # as if the parts' removal had been cut off
    assert job_table(sink, JOB).num_rows == 40  # the compacted file alone
    assert compact(sink, JOB) is True
    assert sorted(os.listdir(tmp_path / JOB)) == [COMPACTED]


def test_a_file_lands_whole_or_not_at_all(tmp_path, monkeypatch):
    sink = FileSink(tmp_path)

    def no_room(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_room)
    with pytest.raises(SinkUnavailable, match="No space left on device"):
        write_part(sink, JOB, 0, rows(0, 4), "m:1")
    assert os.listdir(tmp_path / JOB) == []  # no temporary file left behind, no part


def test_a_folder_that_cannot_be_written_is_an_outage_not_a_crash(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("in the way")
    with pytest.raises(SinkUnavailable):
        write_part(FileSink(blocked), JOB, 0, rows(0, 4), "m:1")


def test_urls_and_names_are_checked(tmp_path):
    assert open_sink(f"file://{tmp_path}").root == tmp_path
    for url in ("http://example.com/x", "file://host/x", "file:relative", "s3://", "/plain/path"):
        with pytest.raises(InvalidArgument):
            open_sink(url)
    sink = FileSink(tmp_path)
    for job_id, name in (("../etc", "part-1.parquet"), (JOB, "../x.parquet"), (JOB, ".hidden.parquet")):
        with pytest.raises(InvalidArgument):
            sink.write(job_id, name, b"x")
    with pytest.raises(NotFound):
        sink.read(JOB, part_name(0))


def test_removing_a_job_removes_its_folder(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 20, 16)
    sink.remove_job(JOB)
    assert not (tmp_path / JOB).exists()
    assert job_table(sink, JOB).num_rows == 0


@pytest.fixture
def s3(monkeypatch):
    """An S3 client of moto's in-process mock, with the bucket "answers"."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="answers")
        yield client


def test_an_s3_sink_holds_the_same_files_under_its_prefix(s3):
    client = s3
    sink = open_sink("s3://answers/podium/results", client)
    write_job(sink, 40, 16)
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="answers")["Contents"])
    assert keys == [f"podium/results/{JOB}/{part_name(first)}" for first in (0, 16, 32)]
    before = job_table(sink, JOB)
    assert compact(sink, JOB)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="answers")["Contents"]]
    assert keys == [f"podium/results/{JOB}/{COMPACTED}"]
    assert job_table(sink, JOB).equals(before)
    sink.remove_job(JOB)
    assert client.list_objects_v2(Bucket="answers").get("KeyCount") == 0


def test_a_missing_bucket_is_an_outage_for_a_writer(s3):
    sink = open_sink("s3://nowhere/results", s3)
    with pytest.raises(SinkUnavailable, match="no such bucket"):
        write_part(sink, JOB, 0, rows(0, 2), "m:1")


def test_a_thousand_parts_compact_into_few_row_groups(tmp_path):
    sink = FileSink(tmp_path)
    started = time.perf_counter()
    write_job(sink, 16_000, 16)
    compact(sink, JOB)
    assert pq.ParquetFile(tmp_path / JOB / COMPACTED).metadata.num_row_groups == 1
    assert job_table(sink, JOB).column("index").to_pylist() == list(range(16_000))
    assert time.perf_counter() - started < 60


def test_retention_removes_old_job_folders_but_not_a_running_jobs(tmp_path):
    store = fake_store()
    sink = FileSink(tmp_path)
    old, running, recent = "a" * 32, "b" * 32, "c" * 32
    for job_id in (old, running, recent):
        write_part(sink, job_id, 0, rows(0, 2), "m:1")
    month_ago = time.time() - 30 * 86_400
    for job_id in (old, running):
        for entry in (tmp_path / job_id).iterdir():
            os.utime(entry, (month_ago, month_ago))
    store._redis.sadd(ACTIVE_JOBS_KEY, running)
    assert Retention(fake_store(), sink, days=0).run_once() == []  # 0: kept
    assert Retention(store, sink, days=7).run_once() == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == [running, recent]
    assert Retention(store, sink, days=7).run_once() == []  # one sweep an hour, across gateways


def test_the_sweep_removes_what_a_killed_writer_left_but_not_a_live_writers_file(tmp_path):
    sink = FileSink(tmp_path)
    write_part(sink, JOB, 0, rows(0, 2), "m:1")
    hour_ago = time.time() - 2 * 3600
    with pytest.raises(KeyboardInterrupt), sink.writing(JOB, part_name(2)) as path:
        path.write_bytes(b"half a file")
        raise KeyboardInterrupt  # a clean stop removes its own temporary file
    left = tmp_path / JOB / f".{part_name(2)}.{'d' * 32}.tmp"  # what kill -9 leaves instead
    left.write_bytes(b"half a file")
    os.utime(left, (hour_ago, hour_ago))
    live = tmp_path / JOB / f".{COMPACTED}.{'e' * 32}.tmp"  # a compaction still writing
    live.write_bytes(b"rows so far")
    unrelated = tmp_path / JOB / "notes.tmp"
    unrelated.write_bytes(b"not ours")
    os.utime(unrelated, (hour_ago, hour_ago))
    assert sorted(p.name for p in (tmp_path / JOB).iterdir()) == sorted(
        [left.name, live.name, unrelated.name, part_name(0)]
    )
    assert Retention(fake_store(), sink, days=0).run_once() == []  # no retention: the sweep runs anyway
    assert sorted(p.name for p in (tmp_path / JOB).iterdir()) == sorted([live.name, unrelated.name, part_name(0)])
    assert sink.sweep_temporaries(time.time() - 3600) == 0


def test_an_s3_sink_tells_when_each_job_folder_was_last_written(s3):
    client = s3
    sink = open_sink("s3://answers/runs", client)
    write_part(sink, JOB, 0, rows(0, 2), "m:1")
    client.put_object(Bucket="answers", Key="runs/notes.txt", Body=b"not a job")
    assert list(sink.last_written()) == [JOB]
    assert abs(sink.last_written()[JOB] - time.time()) < 120


def test_duckdb_reads_a_jobs_files_and_every_jobs_at_once(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 40, 16)  # a running job: its parts
    other = "f" * 32
    write_part(sink, other, 0, rows(0, 10), "resnet50_sports:4")
    compact(sink, other)  # a completed one: its results.parquet
    one = duckdb.sql(
        f"SELECT label, count(*) AS images, round(avg(probability), 4) AS mean "
        f"FROM '{tmp_path}/{JOB}/*.parquet' WHERE status = 'ok' GROUP BY label"
    ).fetchall()
    assert one == [("rugby", 32, 0.8125)]
    every = duckdb.sql(
        f"SELECT model, count(*) FROM read_parquet('{tmp_path}/*/*.parquet') GROUP BY model ORDER BY model"
    ).fetchall()
    assert every == [("resnet50_sports:3", 40), ("resnet50_sports:4", 10)]


def test_rows_read_back_are_the_records_they_were_made_from(tmp_path):
    sink = FileSink(tmp_path)
    write_job(sink, 12, 4)
    assert list(rows_from(sink, JOB, 0)) == rows(0, 12)  # maps, errors, digests, times (to the ms)
    assert chunk_rows(sink, JOB, 4, 4) == {row.index: row for row in rows(4, 4)}
    assert chunk_rows(sink, JOB, 12, 4) is None  # no such file yet


def test_a_reader_goes_on_in_the_compacted_file_when_the_parts_go(tmp_path, monkeypatch):
    sink = FileSink(tmp_path)
    write_job(sink, 12, 4)
    read = sink.read

    def compacted_meanwhile(job_id: str, name: str) -> bytes:
        if name == part_name(4) and not (tmp_path / JOB / COMPACTED).exists():
            compact(FileSink(tmp_path), JOB)  # between listing the parts and reading the second
        return read(job_id, name)

    monkeypatch.setattr(sink, "read", compacted_meanwhile)
    assert [row.index for row in rows_from(sink, JOB, 1)] == list(range(1, 12))
    assert [row.index for row in rows_from(sink, JOB, 7)] == list(range(7, 12))  # from the compacted file
    assert chunk_rows(sink, JOB, 8, 4) == {row.index: row for row in rows(8, 4)}


def test_a_reader_of_a_large_compacted_file_reads_only_the_row_groups_it_needs(tmp_path, monkeypatch):
    sink = FileSink(tmp_path)
    write_job(sink, 3 * 65_536 // 16, 16)
    compact(sink, JOB)
    groups: list[int] = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, i, *a, **k: groups.append(i) or real(self, i))
    assert [row.index for row in rows_from(sink, JOB, 12_287)] == [12_287]
    assert groups == [0]
