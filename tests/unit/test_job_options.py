"""A job's options are declared once (podium.core.jobs.options) and reach the wire, the job
record, the Redis hash, the `podium submit` flags and the web page's upload from there."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from podium.cli.job_flags import JOB_OPTIONS, job_flags, with_job_options
from podium.core.errors import InvalidArgument
from podium.core.jobs import DEFAULT_TOP_K, Job, JobOptions, option_names
from podium.core.proto import podium_pb2 as pb
from podium.core.proto.options import from_spec, to_spec
from podium.stores.jobstore.schema import JOB_HASH

SAMPLE = JobOptions(
    top_k=3,
    name="finals",
    model="resnet50_sports:2",
    explain=True,
    source="/photos",
    job_key="k",
    webhook="https://hooks.example/x",
    max_failed="10%",
    incremental="nightly",
)


def test_every_option_is_a_field_of_the_wire_spec_and_back():
    assert [field.name for field in pb.JobSpec.DESCRIPTOR.fields] == option_names()
    assert from_spec(to_spec(SAMPLE)) == SAMPLE
    assert from_spec(pb.JobSpec()) == JobOptions()


def test_the_job_record_and_the_redis_hash_carry_every_option():
    record = [field.name for field in dataclasses.fields(Job)]
    assert set(option_names()) <= set(record)
    assert JOB_HASH.public_names == record  # the hash's public fields are read from Job
    assert JOB_HASH.fields["explain"].parse("1") is True and JOB_HASH.fields["top_k"].initial == DEFAULT_TOP_K


def test_options_by_keyword_refuse_a_name_that_is_no_option():
    assert JobOptions.of({"top_k": 3}) == JobOptions(top_k=3)
    with pytest.raises(InvalidArgument, match="not options of a job: colour") as refused:
        JobOptions.of({"colour": "red"})
    assert "top_k" in refused.value.hint


def test_options_from_text_parse_by_type():
    parsed = JobOptions.from_text({"top_k": "4", "explain": "on", "name": "x", "unknown": "ignored"})
    assert parsed == JobOptions(top_k=4, explain=True, name="x")
    with pytest.raises(InvalidArgument, match="top_k must be a whole number"):
        JobOptions.from_text({"top_k": "many"})


def test_submit_flags_are_made_from_the_options():
    seen = []
    app = typer.Typer()

    @app.command()
    @with_job_options
    def submit(folder: str, options: JobOptions = JOB_OPTIONS, show: int = 20) -> None:
        seen.append((folder, options, show))

    flags = ["--top-k", "3", "--name", "finals", "--model", "resnet50_sports:2", "--explain", "--job-key", "k"]
    flags += ["--webhook", "https://hooks.example/x", "--max-failed", "10%", "--incremental", "nightly"]
    result = CliRunner().invoke(app, ["photos", *flags, "--show", "5"])
    assert result.exit_code == 0, result.output
    assert seen == [("photos", dataclasses.replace(SAMPLE, source=""), 5)]
    assert [option.name for option in job_flags()] == [name for name in option_names() if name != "source"]
    assert CliRunner().invoke(app, ["photos", "--source", "x"]).exit_code == 2  # set by the client, no flag
