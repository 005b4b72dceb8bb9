"""Nothing lost, nothing doubled: real processes killed, frozen and restarted mid-job.

Each test runs a job on a supervised LocalCluster (the supervisor of `podium up` restarts
what dies), injects one fault while the job runs, and then checks that every image has
exactly one result, that the counters equal the results, and that no image failed
because of the fault: results equal those of a fault-free run."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from podium import PodiumClient
from podium.core.jobs import JobState
from podium.core.proto import podium_pb2 as pb
from podium.stores.jobstore import JobStore
from podium.stores.resultsink.storage import file_url_path
from tests.support.faults import (
    JOB_TIMEOUT_S,
    assert_same_as,
    model_stub_pid,
    run_job,
    sound_again,
    watch_to_end,
)
from tests.support.poison import POISON_MARK

pytestmark = pytest.mark.integration

JOB_IMAGES = 160


@pytest.fixture(autouse=True)
def sound_after_a_failure(request, faulty_cluster):
    """A test that failed may have left a job that cannot end or a child wedged: the next
    test starts on a sound cluster instead of failing the same way."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sound_again(faulty_cluster)


def busy(cluster, number: int, timeout_s: float = 15.0) -> None:
    """Wait until worker ``number`` runs a chunk (Celery's inspect), so that a kill lands on one."""
    from podium.stores.jobstore import make_celery

    app, name = make_celery(cluster.redis_url), f"podium-worker-{number}@{cluster.gateway_port}"
    deadline = time.monotonic() + timeout_s
    try:
        while not (app.control.inspect(destination=[name], timeout=0.5).active() or {}).get(name):
            assert time.monotonic() < deadline, f"{name} ran no chunk for {timeout_s:.0f} s"
    finally:
        app.close()


def shared_memory_regions(cluster) -> tuple[list[str], list[str]]:
    """The workers' shared-memory regions: (Triton's registrations, files in /dev/shm)."""
    import tritonclient.grpc as grpcclient

    from podium.stores.inference.shared_memory import PREFIX, SHM_DIR

    client = grpcclient.InferenceServerClient(cluster.triton_url)
    try:
        registered = list(client.get_system_shared_memory_status(as_json=True).get("regions", {}))
    finally:
        client.close()
    return [n for n in registered if n.startswith(PREFIX)], [p.name for p in SHM_DIR.glob(PREFIX + "*")]


def owners_alive(names: list[str]) -> bool:
    return all(os.path.exists(f"/proc/{name.split('-')[1]}") for name in names)


def test_sigkill_a_worker_process_tree_mid_job(faulty_cluster, photos, baseline):
    worker = faulty_cluster.process("worker-1")

    def kill_while_it_works() -> None:
        busy(faulty_cluster, 1)
        worker.signal_group(signal.SIGKILL)

    # Inspect is a round trip: a kill can land just after a short chunk ended (retries 0, seen
    # in CI). Then the fault is tried again; one of three must land on a running chunk, and
    # every run must lose and double nothing.
    for _ in range(3):
        job, records = run_job(faulty_cluster, photos, fault=kill_while_it_works)
        assert_same_as(records, baseline)
        if job.retries >= 1:
            break
    assert job.retries >= 1, "in three kills, no killed worker's chunk was delivered again"
    # What the killed process had in shared memory was swept by the one that replaced it.
    registered, files = shared_memory_regions(faulty_cluster)
    assert registered and owners_alive(registered) and owners_alive(files), (registered, files)


def test_sigkill_triton_mid_job(faulty_cluster, photos, baseline):
    triton = faulty_cluster.process("triton")
    _, records = run_job(faulty_cluster, photos, fault=lambda: triton.signal_group(signal.SIGKILL))
    assert_same_as(records, baseline)
    # The restarted Triton knew none of the workers' regions: they registered them again.
    registered, _ = shared_memory_regions(faulty_cluster)
    assert registered, "the workers sent no pixels through shared memory to the restarted Triton"


def test_freeze_triton_longer_than_the_client_timeout(faulty_cluster, photos, baseline):
    """The embedded Triton's Python backend often does not come through a freeze of its
    process group: tritonserver aborts (restarted as any dead child), or a model's stub
    dies and the supervisor's watch restarts Triton (the test after this one). Whichever
    happens, no image fails."""
    triton = faulty_cluster.process("triton")

    def freeze() -> None:
        triton.signal_group(signal.SIGSTOP)
        time.sleep(8)  # the workers' Triton time-out is 3 s
        triton.signal_group(signal.SIGCONT)

    _, records = run_job(faulty_cluster, photos, fault=freeze)
    assert_same_as(records, baseline)


def test_a_model_stub_that_died_gets_triton_restarted(faulty_cluster, photos, baseline, caplog):
    """The Python backend never restarts a stub that died (as one may in a freeze): Triton
    lives on and fails every request to that model. The supervisor's watch notices and
    restarts Triton; the images waited and none failed."""
    triton = faulty_cluster.process("triton")
    model = faulty_cluster.worker_settings.model_name

    def kill_the_stub() -> None:
        os.kill(model_stub_pid(triton.pid, model), signal.SIGKILL)

    with caplog.at_level(logging.ERROR, logger="podium.cluster.local"):
        _, records = run_job(faulty_cluster, photos, fault=kill_the_stub)
    assert_same_as(records, baseline)
    said = [r.getMessage() for r in caplog.records]
    assert any(f"has failed every request to {model}:" in line for line in said), said


def block_results(cluster) -> Callable[[], None]:
    """The results folder replaced by a file: every write fails, as on a lost or full disk.
    Returns what puts it back."""
    root = file_url_path(cluster.gateway_settings.results_url)
    aside = root.with_name("results-aside")
    root.mkdir(parents=True, exist_ok=True)  # made by the first job's results
    root.rename(aside)
    root.write_text("in the way")

    def restore() -> None:
        root.unlink()
        aside.rename(root)

    return restore


def test_a_results_sink_away_for_a_while_loses_and_doubles_no_row(faulty_cluster, photos, baseline):
    def away_for_six_seconds() -> None:
        threading.Timer(6, block_results(faulty_cluster)).start()  # the outage limit is 20 s

    job, records = run_job(faulty_cluster, photos, fault=away_for_six_seconds)
    assert job.state is JobState.COMPLETED
    assert_same_as(records, baseline)  # and run_job held the files to one row per image


def test_a_results_sink_that_stays_away_fails_the_job_saying_why(faulty_cluster, photos):
    restore = block_results(faulty_cluster)
    try:
        with PodiumClient(faulty_cluster.gateway_address) as client:
            job = watch_to_end(client, client.submit_folder(photos).id)
    finally:
        restore()
    assert job.state == pb.JOB_STATE_FAILED, job
    assert "results sink" in job.error and "could not be written" in job.error, job.error


def test_sigkill_redis_mid_job(faulty_cluster, photos, baseline):
    redis_proc = faulty_cluster.process("redis")
    # AOF everysec: a kill loses at most the last second, a prefix of the writes.
    _, records = run_job(faulty_cluster, photos, fault=lambda: redis_proc.signal_group(signal.SIGKILL))
    assert_same_as(records, baseline)


def test_with_redis_frozen_the_cli_names_redis_and_shows_the_gateways_hint(faulty_cluster):
    """The gateway answered (its Redis did not): the CLI says so, with the hint written in the
    gateway, not "the gateway is unavailable"."""
    from podium.stores.jobstore.errors import StoreUnavailable
    from tests.support.cli import run_cli

    redis_proc = faulty_cluster.process("redis")
    redis_proc.signal_group(signal.SIGSTOP)
    try:
        done = run_cli("status", "f" * 32, "--gateway", faulty_cluster.gateway_address, timeout_s=60)
    finally:
        redis_proc.signal_group(signal.SIGCONT)
    said = " ".join(done.stderr.split())
    assert done.returncode != 0 and "Traceback" not in said
    assert "Redis" in said and "the gateway at" not in said, said
    assert " ".join(StoreUnavailable.hint.split()) in said, said


def test_restart_the_gateway_while_the_cli_watches(faulty_cluster, photos, baseline, tmp_path):
    output = tmp_path / "out.jsonl"
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "podium",
            "submit",
            str(photos),
            "--wait",
            "--output",
            str(output),
            "--name",
            "gateway-restart",
            "--gateway",
            faulty_cluster.gateway_address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = JobStore.from_url(faulty_cluster.redis_url)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        job = None
        while time.monotonic() < deadline:  # wait for the upload to end and the watch to begin
            jobs = [store.get(j) for j in store.active_job_ids()]
            job = next((j for j in jobs if j and j.name == "gateway-restart"), None)
            if job and job.state is JobState.RUNNING and job.finished >= 16:
                break
            time.sleep(0.1)
        assert job is not None
        faulty_cluster.process("gateway").signal_group(signal.SIGKILL)
        _, stderr = cli.communicate(timeout=JOB_TIMEOUT_S)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, stderr
    records = {r["path"]: r for r in map(json.loads, output.read_text().splitlines())}
    assert len(records) == JOB_IMAGES
    assert_same_as(records, baseline)


def test_a_poison_image_fails_alone(faulty_cluster, photos, tmp_path):
    folder = tmp_path / "poisoned"
    folder.mkdir()
    for path in sorted(photos.rglob("*.jpg"))[:30]:
        (folder / path.name).write_bytes(path.read_bytes())
    poison = folder / "poison.jpg"
    poison.write_bytes(next(photos.rglob("*.jpg")).read_bytes() + POISON_MARK)  # still a valid JPEG
    job, records = run_job(faulty_cluster, folder, fault=None)
    assert job.failed == 1
    assert records["poison.jpg"]["status"] == "error"
    assert "died" in records["poison.jpg"]["error"]
    assert all(r["status"] == "ok" for p, r in records.items() if p != "poison.jpg")
