"""Jobs run through a cluster while a fault is injected, and the checks every such run must pass."""

from __future__ import annotations

import time
from pathlib import Path

from podium import PodiumClient
from podium.client.output import result_record
from podium.cluster import LocalCluster
from podium.core.jobs import Job
from podium.core.proto import podium_pb2 as pb
from podium.stores.jobstore import JobStore
from podium.stores.jobstore.errors import StoreUnavailable
from tests.support.sink import assert_rows_equal_lines, compacted_table

JOB_TIMEOUT_S = 300
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
        deadline = time.monotonic() + JOB_TIMEOUT_S
        for update in client.watch(job.id):
            job = update
            assert time.monotonic() < deadline, "job did not finish in time"
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


def read_job_waiting_for_redis(store: JobStore, job_id: str) -> Job:
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
