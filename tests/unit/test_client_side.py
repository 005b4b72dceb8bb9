"""Client-side pieces: which files make a job, result records, output files, CLI help."""

from __future__ import annotations

import csv
import json

import grpc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gateway.uploads import check_relative_path
from podium.cli.failures import exit_code
from podium.cli.main import build_app
from podium.cli.parquet import write_parquet
from podium.client.output import ResultFormat, result_record, write_results
from podium.core.errors import InvalidArgument, Status
from podium.core.jobs import walk_files
from podium.core.proto import podium_pb2 as pb
from podium.stores.resultsink import COLUMNS


def test_walk_files_is_sorted_nested_and_skips_hidden(tmp_path):
    for rel in ("b.jpg", "a/z.png", "a/b/c.gif", ".DS_Store", ".cache/x.jpg", "a/.hidden.jpg", "noext"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert list(walk_files(tmp_path)) == ["b.jpg", "noext", "a/z.png", "a/b/c.gif"]


@pytest.mark.parametrize("path", ["a.jpg", "x/y/z.png", "été photo.jpg"])
def test_relative_paths_accepted(path):
    assert check_relative_path(path) == path


@pytest.mark.parametrize("path", ["", "/abs.jpg", "../up.jpg", "a/../../b.jpg", "a//b.jpg", "a\\b.jpg", "a\x00b"])
def test_unsafe_paths_refused(path):
    with pytest.raises(InvalidArgument):
        check_relative_path(path)


OK = pb.ImageResult(
    index=0,
    path="a.jpg",
    status=pb.IMAGE_STATUS_OK,
    top_k=[
        pb.Prediction(label="archery", index=2, probability=0.75),
        pb.Prediction(label="rugby", index=70, probability=0.25),
    ],
)
BAD = pb.ImageResult(index=1, path="b.jpg", status=pb.IMAGE_STATUS_ERROR, error="empty file (0 bytes)")


def test_result_records_follow_the_contract():
    assert result_record(OK) == {
        "path": "a.jpg",
        "status": "ok",
        "error": None,
        "top_k": [
            {"label": "archery", "index": 2, "probability": 0.75},
            {"label": "rugby", "index": 70, "probability": 0.25},
        ],
    }
    assert result_record(BAD) == {"path": "b.jpg", "status": "error", "top_k": [], "error": "empty file (0 bytes)"}


def test_jsonl_and_csv_files(tmp_path):
    records = [result_record(OK), result_record(BAD)]
    jsonl = tmp_path / "out" / "r.jsonl"
    assert list(write_results(jsonl, records)) == records
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == records
    table = tmp_path / "r.csv"
    list(write_results(table, records))
    rows = list(csv.DictReader(table.open()))
    assert rows[0]["label"] == "archery" and rows[0]["probability"] == "0.75"
    assert rows[1]["status"] == "error" and rows[1]["error"] == "empty file (0 bytes)"
    assert json.loads(rows[0]["top_k"])[1]["label"] == "rugby"


def test_the_format_follows_the_flag_else_the_suffix():
    assert ResultFormat.of(None) is ResultFormat.JSONL
    assert ResultFormat.of("out.CSV") is ResultFormat.CSV
    assert ResultFormat.of("s3://b/k/answers.parquet") is ResultFormat.PARQUET
    assert ResultFormat.of("answers.txt") is ResultFormat.JSONL
    assert ResultFormat.of("answers.csv", ResultFormat.PARQUET) is ResultFormat.PARQUET


def test_a_parquet_file_has_the_sinks_columns_and_one_row_per_result(tmp_path):
    explained = pb.ImageResult()
    explained.CopyFrom(OK)
    explained.index, explained.sha256, explained.finished_at = 2, "ab" * 32, 1_764_000_000.5
    explained.cam.CopyFrom(pb.ClassActivationMap(class_index=2, rows=1, cols=2, values=[1.0, 0.5]))
    path = tmp_path / "out" / "r.parquet"
    results = [OK, BAD, explained]
    assert list(write_parquet(path, iter(results), "resnet50_sports:3")) == results
    table = pq.read_table(path)
    assert tuple(table.column_names) == COLUMNS
    rows = table.to_pylist()
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert [row["status"] for row in rows] == ["ok", "error", "ok"]
    assert (rows[0]["label"], rows[0]["probability"], rows[0]["sha256"]) == ("archery", 0.75, None)
    assert rows[1]["error"] == "empty file (0 bytes)" and rows[1]["top_k"] == []
    assert rows[2]["sha256"] == "ab" * 32 and rows[2]["cam"] == pytest.approx([1.0, 128 / 255], abs=1e-6)
    assert rows[2]["finished_at"].timestamp() == pytest.approx(1_764_000_000.5, abs=1e-3)
    assert {row["model"] for row in rows} == {"resnet50_sports:3"}


def test_parquet_needs_a_file():
    result = CliRunner().invoke(build_app(), ["results", "0" * 32, "--format", "parquet"])
    assert result.exit_code == exit_code(Status.INVALID_ARGUMENT)
    assert "--output FILE.parquet" in result.output


@pytest.mark.parametrize(
    "command", ["export", "up", "submit", "status", "results", "cancel", "classes", "classify", "demo"]
)
def test_every_command_has_help(command):
    result = CliRunner().invoke(build_app(), [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_client_errors_are_readable_without_a_gateway(tmp_path):
    result = CliRunner().invoke(build_app(), ["status", "abc", "--gateway", "127.0.0.1:1"])
    assert result.exit_code == exit_code(Status.UNAVAILABLE)
    assert "the gateway at 127.0.0.1:1 is unavailable" in " ".join(result.output.split())
    assert "hint:" in result.output
    assert "Traceback" not in result.output


def test_submit_needs_exactly_one_source(tmp_path):
    for args in (
        ["submit"],
        ["submit", str(tmp_path), "--server-path", "/data"],
        ["submit", "s3://b/p", "--manifest", "m"],
    ):
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code == exit_code(Status.INVALID_ARGUMENT) and "give one of" in result.output, args


class _Refused(grpc.RpcError):
    def __init__(self, code, details, trailers=()):
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def test_the_gateways_own_refusal_keeps_its_class_message_and_hint():
    from podium.client.api import _converted
    from podium.core.errors import NotFound, Unavailable
    from podium.core.proto.status import error_trailers

    away = _converted(
        _Refused(grpc.StatusCode.UNAVAILABLE, "the job store (Redis) is unavailable", error_trailers("start Redis")),
        "gw:1",
    )
    assert isinstance(away, Unavailable) and away.message == "the job store (Redis) is unavailable"
    assert away.hint == "start Redis"
    missing = _converted(_Refused(grpc.StatusCode.NOT_FOUND, "no job 'x'", error_trailers("")), "gw:1")
    assert isinstance(missing, NotFound) and missing.hint == ""
    unreachable = _converted(_Refused(grpc.StatusCode.UNAVAILABLE, "connection refused"), "gw:1")
    assert unreachable.message.startswith("the gateway at gw:1 is unavailable") and "podium up" in unreachable.hint


def test_the_client_and_the_web_page_reach_a_gateway_through_one_address_block():
    from podium.client.settings import ClientSettings, GatewayAddress
    from podium.web.settings import WebSettings

    page = WebSettings(gateway="gw:1", gateway_tls=True, gateway_tls_ca_file="/ca.pem")
    assert page.address() == GatewayAddress("gw:1", True, "/ca.pem")
    client = ClientSettings(gateway="gw:2", tls=True)
    assert client.address() == GatewayAddress("gw:2", True, "") and client.address("other:3").gateway == "other:3"
