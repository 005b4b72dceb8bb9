"""kill -9 of a process while it writes a part file or compacts a job's files: nothing is lost
or doubled once the work is done again (a redelivered chunk, the gateway's compaction pass).

A real process is killed with SIGKILL at a known point — its file written in full under a
temporary name, not yet landed (``FileSink.writing`` holds it at the fsync before the rename)
— so the kill lands mid-write every time, not by luck of timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from podium.stores.resultsink import COMPACTED, compact, job_table, open_sink, part_names, write_part
from tests.unit.test_resultsink import JOB, rows

CHUNK, TOTAL = 8, 32
MODEL = "resnet50_sports:3"

# Runs in the process that is killed: ``ACTION`` ("part": write chunk 3's file; "compact"),
# holding at the fsync of the file it is about to land until it is killed.
_VICTIM = textwrap.dedent(
    """
    import os, sys, time
    from podium.stores.resultsink import compact, open_sink, storage, write_part
    from tests.unit.test_resultsink import JOB, rows

    url, action, ready = sys.argv[1:4]
    real_fsync = storage.os.fsync

    def held(fd):
        real_fsync(fd)
        open(ready, "w").close()  # the file is written in full, under its temporary name
        time.sleep(600)

    storage.os.fsync = held
    sink = open_sink(url)
    if action == "part":
        write_part(sink, JOB, 24, rows(24, 8), "resnet50_sports:3")
    else:
        compact(sink, JOB)
    """
)


def killed_while(url: str, action: str, tmp_path: Path) -> None:
    """Run ``action`` in a fresh process and SIGKILL it while its file is on its way."""
    ready = tmp_path / f"{action}.ready"
    root = Path(__file__).resolve().parents[2]
    victim = subprocess.Popen([sys.executable, "-c", _VICTIM, url, action, str(ready)], cwd=root)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert victim.poll() is None, f"the {action} process ended before its file was written"
            assert time.monotonic() < deadline, f"the {action} process wrote nothing in 60 s"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == -signal.SIGKILL


def assert_one_row_per_index(sink) -> None:
    table = job_table(sink, JOB)
    assert table.column("index").to_pylist() == list(range(TOTAL))
    assert table.column("path").to_pylist() == [f"photos/{i}.jpg" for i in range(TOTAL)]


@pytest.fixture
def sink_url(tmp_path) -> str:
    return f"file://{tmp_path / 'results'}"


def test_a_worker_killed_while_it_writes_a_part_leaves_no_row_and_its_chunk_lands_whole_again(sink_url, tmp_path):
    sink = open_sink(sink_url)
    for first in range(0, 24, CHUNK):
        write_part(sink, JOB, first, rows(first, CHUNK), MODEL)
    killed_while(sink_url, "part", tmp_path)
    folder = tmp_path / "results" / JOB
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "the kill landed after the file landed"
    assert len(part_names(sink, JOB)) == 3  # the half-landed file is nobody's part
    assert job_table(sink, JOB).num_rows == 24
    write_part(sink, JOB, 24, rows(24, CHUNK), MODEL)  # the chunk, delivered again
    assert compact(sink, JOB)
    assert sink.names(JOB) == [COMPACTED]
    assert_one_row_per_index(sink)


def test_a_process_killed_while_it_compacts_leaves_the_parts_and_the_next_pass_compacts_them(sink_url, tmp_path):
    sink = open_sink(sink_url)
    for first in range(0, TOTAL, CHUNK):
        write_part(sink, JOB, first, rows(first, CHUNK), MODEL)
    before = job_table(sink, JOB)
    killed_while(sink_url, "compact", tmp_path)
    assert COMPACTED not in sink.names(JOB), "the kill landed after the compacted file landed"
    assert len(part_names(sink, JOB)) == 4  # parts go only after the compacted file landed
    assert job_table(sink, JOB).equals(before)  # readers merge the parts meanwhile
    assert compact(sink, JOB)  # the gateway's pass over jobs left uncompacted
    assert sink.names(JOB) == [COMPACTED]
    assert_one_row_per_index(sink)
    assert job_table(sink, JOB).equals(before)
