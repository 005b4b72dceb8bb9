"""Jobs run through a cluster while a fault is injected, and the checks every such run must pass."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from podium import Job as JobUpdate
from podium import PodiumClient
from podium.client.output import result_record
from podium.cluster import LocalCluster
from podium.cluster.processes import tail
from podium.core.jobs import Job
from podium.core.proto import podium_pb2 as pb
from podium.stores.jobstore import JobStore
from podium.stores.jobstore.errors import StoreUnavailable
from tests.support.sink import assert_rows_equal_lines, compacted_table

JOB_TIMEOUT_S = 300
T = TypeVar("T")
# Top-1 may flip between runs only where the fault-free run's two best classes were this close.
TIE = 1e-4


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
            during = read_job_waiting_for_redis(store, job.id)
            assert not during.state.terminal and during.finished < during.total, f"the fault landed too late: {during}"
        job = watch_to_end(client, job.id)
        results = list(client.results(job.id))
    assert job.state == pb.JOB_STATE_COMPLETED
    stored = store.get(job.id)
    assert stored.succeeded + stored.failed == stored.total == len(results), "every image counted exactly once"
    if stored.results_url:  # its answers are in its files: Redis keeps the job's record only
        # (and a killed worker's chunk lease until it runs out)
        assert [key for key in store.job_keys(job.id) if ":lease:" not in key] == [f"podium:job:{job.id}"]
    else:
        assert store.result_count(job.id) == stored.total
    assert stored.failed == sum(r.status == pb.IMAGE_STATUS_ERROR for r in results)
    lines = [result_record(r) for r in results]
    if stored.results_url:  # every index has exactly one row in the job's files, the answer streamed
        assert_rows_equal_lines(compacted_table(stored.results_url, job.id), lines)
    return stored, {line["path"]: line for line in lines}


def watch_to_end(client: PodiumClient, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> JobUpdate:
    """The job's last update from ``client.watch``, which returns once the job ends. A job
    that stops moving fails the test after ``timeout_s``: a watch that hears nothing would
    otherwise block until pytest's own time-out, and a stuck cluster made every later test
    wait as long."""
    updates: list[JobUpdate] = []
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            updates.extend(client.watch(job_id))
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            failures.append(exc)

    watcher = threading.Thread(target=follow, name=f"watch-{job_id}", daemon=True)
    watcher.start()
    watcher.join(timeout_s)
    if failures:
        raise failures[0]
    last = updates[-1] if updates else None
    assert not watcher.is_alive(), f"job {job_id} did not end within {timeout_s:.0f} s; its last update: {last}"
    assert last is not None, f"the watch of job {job_id} ended without an update"
    return last


def read_job_waiting_for_redis(store: JobStore, job_id: str) -> Job:
    """The job as Redis holds it; after a Redis kill, once the supervisor has restarted it."""
    return read_waiting_for_redis(lambda: store.get(job_id))


def read_waiting_for_redis(read: Callable[[], T]) -> T:
    """``read()``, tried again while Redis is away (a killed one is restarted by the supervisor)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return read()
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


def logs_tail(cluster: LocalCluster, lines: int = 12, width: int = 240) -> str:
    """The last lines of each child's log, for the report of a test that failed."""
    parts = []
    for proc in cluster.processes:
        last = [line[:width] for line in tail(proc.log_path, lines).splitlines()]
        parts.append("\n".join([f"--- {proc.name} ({proc.log_path})", *last]))
    return "\n".join(parts)


def sound_again(cluster: LocalCluster) -> None:
    """After a failed test: jobs it left running cancelled, anything it left stopped
    continued, Triton and the workers restarted, so that one failure does not make every
    later test wait on a job that cannot end."""
    for proc in cluster.processes:
        proc.signal_group(signal.SIGCONT)
    try:
        store = JobStore.from_url(cluster.redis_url)
        with PodiumClient(cluster.gateway_address) as client:
            for job_id in read_waiting_for_redis(store.active_job_ids):
                client.cancel(job_id)
    except Exception as exc:  # noqa: BLE001 - the restarts below still help the next test
        print(f"could not cancel the jobs left running: {exc}")
    for proc in [p for p in cluster.processes if p.name == "triton" or p.name.startswith("worker-")]:
        cluster.restart(proc)


def model_stub_pid(triton_pid: int, model: str) -> int:
    """The process of the Python-backend stub that runs ``model`` in the Triton ``triton_pid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == triton_pid and f"/{model}/".encode() in command:
            return int(stat.parent.name)
    raise AssertionError(f"Triton {triton_pid} runs no stub of {model}")
