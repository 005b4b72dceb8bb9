"""Nothing lost, nothing doubled: real processes killed, frozen and restarted mid-job.

Each test runs a job on a supervised LocalCluster (the supervisor of `podium up` restarts
what dies), injects one fault while the job runs, and then checks that every image has
exactly one result, that the counters equal the results, and that no image failed
because of the fault: results equal those of a fault-free run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cluster import ClusterSettings, LocalCluster
from jobs import Job, JobState
from jobstore import JobStore
from jobstore.errors import StoreUnavailable
from podium import PodiumClient
from podium.output import result_record
from proto import podium_pb2 as pb
from samples import write_photo_folder
from tests.support.poison import POISON_MARK

pytestmark = pytest.mark.integration

JOB_IMAGES = 160
JOB_TIMEOUT_S = 300
TIE = 1e-4
# Short on purpose, so that redelivery and reconciliation happen within a test.
FAST_RECOVERY = {
    "visibility_timeout_s": 20,
    "triton_timeout_s": 3,
    "stall_timeout_s": 25,
    "reconcile_interval_s": 2,
    "chunk_lease_s": 6,
}


@pytest.fixture(scope="module")
def faulty_cluster(model_repository, tmp_path_factory):
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=2,
        gateway_port=0,
        run_dir=tmp_path_factory.mktemp("faults"),
        service={"chunk_size": 8, **FAST_RECOVERY},
        worker_args=["--include", "tests.support.poison"],
    )
    cluster = LocalCluster(settings)
    cluster.start()
    stop = threading.Event()
    supervisor = threading.Thread(target=cluster.supervise, args=(stop.is_set,), daemon=True)
    supervisor.start()
    try:
        yield cluster
    finally:
        stop.set()
        supervisor.join(60)
        cluster.stop()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_photo_folder(folder, count=JOB_IMAGES)
    return folder


@pytest.fixture(scope="module")
def baseline(faulty_cluster, photos) -> dict[str, dict]:
    """Results of a fault-free run: what every faulty run must end with."""
    job, records = run_job(faulty_cluster, photos, fault=None)
    assert job.failed == 0
    return records


def finished(cluster: LocalCluster, job_id: str) -> int:
    job = JobStore.from_url(cluster.redis_url).get(job_id)
    return job.finished if job else 0


def run_job(cluster: LocalCluster, folder: Path, fault) -> tuple[Job, dict[str, dict]]:
    """Submit folder, call fault() once a few chunks are done, wait, return the job and its results.

    The fault must land while the job runs: the job is read right after it and must be
    neither finished nor ended. The counters, as Redis holds them, must show every image
    exactly once."""
    store = JobStore.from_url(cluster.redis_url)
    with PodiumClient(cluster.gateway_address, reconnect_s=180) as client:
        job = client.submit_folder(folder)
        if fault is not None:
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while finished(cluster, job.id) < 16 and time.monotonic() < deadline:
                time.sleep(0.1)
            fault()
            during = _read_job_waiting_for_redis(store, job.id)
            assert not during.state.terminal and during.finished < during.total, f"the fault landed too late: {during}"
        deadline = time.monotonic() + JOB_TIMEOUT_S
        for update in client.watch(job.id):
            job = update
            assert time.monotonic() < deadline, "job did not finish in time"
        results = list(client.results(job.id))
    assert job.state == pb.JOB_STATE_COMPLETED
    stored = store.get(job.id)
    assert stored.succeeded + stored.failed == stored.total == len(results), "every image counted exactly once"
    assert store.result_count(job.id) == stored.total
    assert stored.failed == sum(r.status == pb.IMAGE_STATUS_ERROR for r in results)
    return stored, {r.path: result_record(r) for r in results}


def _read_job_waiting_for_redis(store: JobStore, job_id: str) -> Job:
    """The job as Redis holds it; after a Redis kill, once the supervisor has restarted it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return store.get(job_id)
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_same_as(records: dict[str, dict], baseline: dict[str, dict]) -> None:
    """Every image succeeded with the fault-free run's answer. Triton batches requests as they
    arrive, and a batch of another size rounds differently in the last bits: the top-1 may
    differ only where the fault-free run's two best classes were tied within TIE."""
    assert records.keys() == baseline.keys()
    for path, record in records.items():
        assert record["status"] == "ok", f"{path} failed because of the fault: {record['error']}"
        ours, theirs = record["top_k"], baseline[path]["top_k"]
        if ours[0]["index"] != theirs[0]["index"]:
            assert theirs[0]["probability"] - theirs[1]["probability"] < TIE, f"{path}: {ours[:2]} vs {theirs[:2]}"
            assert ours[0]["index"] == theirs[1]["index"], path
        assert abs(ours[0]["probability"] - theirs[0]["probability"]) < 1e-4, path


def test_sigkill_a_worker_process_tree_mid_job(faulty_cluster, photos, baseline):
    worker = faulty_cluster.process("worker-1")
    job, records = run_job(faulty_cluster, photos, fault=lambda: worker.signal_group(signal.SIGKILL))
    assert job.retries >= 1, "the killed worker's chunk was never delivered again"
    assert_same_as(records, baseline)


def test_sigkill_triton_mid_job(faulty_cluster, photos, baseline):
    triton = faulty_cluster.process("triton")
    _, records = run_job(faulty_cluster, photos, fault=lambda: triton.signal_group(signal.SIGKILL))
    assert_same_as(records, baseline)


def test_freeze_triton_longer_than_the_client_timeout(faulty_cluster, photos, baseline):
    triton = faulty_cluster.process("triton")

    def freeze() -> None:
        triton.signal_group(signal.SIGSTOP)
        time.sleep(8)  # the workers' Triton time-out is 3 s
        triton.signal_group(signal.SIGCONT)

    _, records = run_job(faulty_cluster, photos, fault=freeze)
    assert_same_as(records, baseline)


def test_sigkill_redis_mid_job(faulty_cluster, photos, baseline):
    redis_proc = faulty_cluster.process("redis")
    # AOF everysec: a kill loses at most the last second, a prefix of the writes.
    _, records = run_job(faulty_cluster, photos, fault=lambda: redis_proc.signal_group(signal.SIGKILL))
    assert_same_as(records, baseline)


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
