"""Real archives, real outages, with real processes: long freezes, a frozen or full Redis,
kills in the middle of an upload, many streams, camera-sized photos, a swapped root,
hostile file names. Each fault lands while its job runs, every image ends with exactly
one line, and no image fails because of the fault."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from podium import PodiumClient, ResourceExhausted, Unavailable
from podium.cluster import LocalCluster
from podium.core.jobs import JobState
from podium.core.proto import podium_pb2 as pb
from podium.core.proto import podium_pb2_grpc as pb_grpc
from podium.stores.jobstore import JobStore
from tests.support.cli import run_cli
from tests.support.faults import assert_same_as, read_job_waiting_for_redis, run_job
from tests.support.poison import POISON_MARK

pytestmark = pytest.mark.integration

MiB = 1024**2


def health_status(address: str, timeout_s: float = 1.0) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s).status
        except grpc.RpcError:
            return None


def keys_without_ttl(cluster: LocalCluster) -> list[str]:
    client = redis.Redis.from_url(cluster.redis_url)
    return [k.decode() for k in client.scan_iter(match="podium:job:*", count=1000) if client.ttl(k) == -1]


def slow_upload(folder: Path, pause_s: float, started: threading.Event) -> Iterator[pb.UploadRequest]:
    """An upload that sends one file, signals, then a file every pause_s."""
    yield pb.UploadRequest(spec=pb.JobSpec(name="slow-upload"))
    for number, path in enumerate(sorted(folder.iterdir())):
        yield pb.UploadRequest(file=pb.FileChunk(path=path.name, data=path.read_bytes(), last=True))
        if number == 0:
            started.set()
        time.sleep(pause_s)


def upload_in_background(cluster: LocalCluster, folder: Path, pause_s: float):
    """Start a slow upload in a thread; returns (started event, outcome list, thread)."""
    started, outcome = threading.Event(), []

    def run() -> None:
        with grpc.insecure_channel(cluster.gateway_address) as channel:
            try:
                outcome.append(pb_grpc.PodiumStub(channel).SubmitUpload(slow_upload(folder, pause_s, started)))
            except grpc.RpcError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60), "the upload did not start"
    return outcome, thread


def the_uploading_job(cluster: LocalCluster):
    store = JobStore.from_url(cluster.redis_url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for job_id in read_active(store):
            job = store.get(job_id)
            if job and job.name == "slow-upload" and job.state is JobState.UPLOADING and job.total >= 1:
                return job
        time.sleep(0.1)
    raise AssertionError("no job is uploading")


def read_active(store: JobStore) -> list[str]:
    try:
        return store.active_job_ids()
    except Unavailable:
        return []


# --- long outages ---------------------------------------------------------------------------


def test_triton_frozen_longer_than_the_visibility_timeout(faulty_cluster, photos, baseline):
    triton = faulty_cluster.process("triton")
    visibility_s = faulty_cluster.worker_settings.visibility_timeout_s

    def freeze() -> None:
        triton.signal_group(signal.SIGSTOP)
        time.sleep(visibility_s + 15)  # running chunks outlive the visibility timeout
        triton.signal_group(signal.SIGCONT)

    job, records = run_job(faulty_cluster, photos, fault=freeze)
    assert_same_as(records, baseline)
    assert job.retries == 0, "no worker died, so no start may count as a retry"


# --- Redis frozen, full, killed -------------------------------------------------------------


def test_a_frozen_redis_turns_health_and_calls_unavailable_then_the_job_completes(faulty_cluster, photos, baseline):
    address, redis_proc = faulty_cluster.gateway_address, faulty_cluster.process("redis")
    figures = {}

    def freeze() -> None:
        job_id = next(j for j in JobStore.from_url(faulty_cluster.redis_url).active_job_ids())
        redis_proc.signal_group(signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            while health_status(address) == health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() - frozen_at < 10, "health stayed SERVING"
                time.sleep(0.1)
            figures["not_serving_s"] = time.monotonic() - frozen_at
            asked = time.monotonic()
            with PodiumClient(address, timeout_s=30) as client, pytest.raises(Unavailable):
                client.get_job(job_id)
            figures["unavailable_s"] = time.monotonic() - asked
            time.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
        finally:
            redis_proc.signal_group(signal.SIGCONT)

    _, records = run_job(faulty_cluster, photos, fault=freeze)
    assert_same_as(records, baseline)
    assert figures["not_serving_s"] <= 3.0, figures
    assert figures["unavailable_s"] <= 10.0, figures
    deadline = time.monotonic() + 10
    while health_status(address) != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "health did not recover"
        time.sleep(0.2)
    print(
        f"frozen Redis: NOT_SERVING after {figures['not_serving_s']:.1f} s, UNAVAILABLE after "
        f"{figures['unavailable_s']:.1f} s"
    )


def test_a_full_redis_refuses_new_jobs_and_running_ones_finish(faulty_cluster, photos, baseline, tmp_path):
    client = redis.Redis.from_url(faulty_cluster.redis_url)
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.jpg").write_bytes(next(photos.rglob("*.jpg")).read_bytes())
    refused = []

    def fill() -> None:
        limit = client.config_get("maxmemory")["maxmemory"]
        # Below what Redis holds: every write that needs memory is refused at once (a chunk's
        # records leave Redis when its file lands, so a job no longer grows into a margin).
        client.config_set("maxmemory", client.info("memory")["used_memory"] - MiB)
        try:
            with PodiumClient(faulty_cluster.gateway_address) as other, pytest.raises(ResourceExhausted) as info:
                other.submit_folder(small)
            refused.append(info.value.message)
            time.sleep(5)  # workers meet the full Redis too, and wait
        finally:
            client.config_set("maxmemory", limit)

    _, records = run_job(faulty_cluster, photos, fault=fill)
    assert_same_as(records, baseline)
    assert "full" in refused[0], refused
    with PodiumClient(faulty_cluster.gateway_address) as other:
        assert other.submit_folder(small).total == 1  # room again: accepted


@pytest.mark.parametrize("victim", ["gateway", "redis"])
def test_a_kill_in_the_middle_of_an_upload_fails_that_upload_cleanly(faulty_cluster, photos, victim):
    folder = photos / "crops"  # a sub-folder of the photos: 36 files
    outcome, thread = upload_in_background(faulty_cluster, folder, pause_s=0.2)
    job = the_uploading_job(faulty_cluster)
    faulty_cluster.process(victim).signal_group(signal.SIGKILL)
    thread.join(60)
    assert isinstance(outcome[0], grpc.RpcError), outcome  # the upload broke, and the client was told
    store = JobStore.from_url(faulty_cluster.redis_url)
    deadline = time.monotonic() + 120  # the restarted gateway's reconciler fails the orphaned upload
    while (ended := read_job_waiting_for_redis(store, job.id)) is not None and not ended.state.terminal:
        assert time.monotonic() < deadline, "the interrupted upload was never failed"
        time.sleep(0.5)
    assert ended is None or ended.state is JobState.FAILED
    assert keys_without_ttl(faulty_cluster) == []
    again, records = run_job(faulty_cluster, folder, fault=None)  # and a new submission works
    assert again.succeeded == len(records) == len(list(folder.iterdir()))


def test_cancel_during_an_upload_leaves_no_key_without_a_ttl(faulty_cluster, photos):
    outcome, thread = upload_in_background(faulty_cluster, photos / "crops", pause_s=0.2)
    job = the_uploading_job(faulty_cluster)
    with PodiumClient(faulty_cluster.gateway_address) as client:
        assert client.cancel(job.id).state == pb.JOB_STATE_CANCELLED
    thread.join(60)
    assert isinstance(outcome[0], grpc.RpcError) and outcome[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert keys_without_ttl(faulty_cluster) == []


# --- streams ------------------------------------------------------------------------------


def test_many_streams_and_idle_uploads_do_not_starve_the_gateway(faulty_cluster, photos):
    address = faulty_cluster.gateway_address
    triton = faulty_cluster.process("triton")
    with PodiumClient(address) as client:
        job = client.submit_folder(photos / "crops")
        triton.signal_group(signal.SIGSTOP)  # the job stays running while the streams are open
        try:
            watches = [client.watch(job.id) for _ in range(64)]
            for watch in watches:
                next(watch)
            idle = [upload_in_background(faulty_cluster, photos / "crops", pause_s=3600) for _ in range(8)]
            started = time.monotonic()
            assert health_status(address) == health_pb2.HealthCheckResponse.SERVING
            health_s = time.monotonic() - started
            started = time.monotonic()
            assert client.get_job(job.id).state == pb.JOB_STATE_RUNNING
            get_s = time.monotonic() - started
            for outcome, thread in idle:  # idle uploads are cancelled after PODIUM_UPLOAD_IDLE_S
                thread.join(30)
                assert isinstance(outcome[0], grpc.RpcError) and outcome[0].code() == grpc.StatusCode.CANCELLED
            for watch in watches:
                watch.close()
        finally:
            triton.signal_group(signal.SIGCONT)
        for _ in client.watch(job.id):
            pass
    assert health_s <= 1.0 and get_s <= 2.0, (health_s, get_s)
    print(f"64 watches + 8 idle uploads: health {health_s * 1000:.0f} ms, GetJob {get_s * 1000:.0f} ms")


# --- camera-sized photos ---------------------------------------------------------------------


def camera_folder(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)).resize((1200, 800), Image.BICUBIC)
    for name, size in (("24mp-a.jpg", (6000, 4000)), ("24mp-b.jpg", (4000, 6000)), ("45mp.jpg", (8192, 5464))):
        base.resize(size, Image.BILINEAR).save(folder / name, quality=90)
    grey = np.linspace(0, 65535, 8000, dtype=np.uint16)[None, :].repeat(8000, axis=0)
    Image.fromarray(grey).save(folder / "64mp-16bit.png")
    return folder


def tree_pss_bytes(pids: list[int]) -> int:
    """Memory of the processes and their children together, from /proc: proportional set
    sizes, so that pages a forked pool child shares with its parent count once, not twice
    (resident sizes would add them up)."""
    total = 0
    for pid in pids:
        for child in [pid, *_children(pid)]:
            try:
                rollup = Path(f"/proc/{child}/smaps_rollup").read_text()
            except OSError:
                continue
            line = next((line for line in rollup.splitlines() if line.startswith("Pss:")), "Pss: 0 kB")
            total += int(line.split()[1]) * 1024
    return total


def _children(pid: int) -> list[int]:
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in path.read_text().split()]
        except OSError:
            pass
    return found


def test_camera_photos_stay_within_the_memory_of_two_workers(faulty_cluster, tmp_path):
    folder = camera_folder(tmp_path / "camera")
    workers = [p.pid for p in faulty_cluster.processes if p.name.startswith("worker-")]
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_pss_bytes(workers))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        job, records = run_job(faulty_cluster, folder, fault=None)
    finally:
        stop.set()
        sampler.join(5)
    assert job.succeeded == 4, records
    assert peak[0] <= 1024 * MiB, f"two workers peaked at {peak[0] / MiB:.0f} MiB"
    print(f"camera photos: two workers peaked at {peak[0] / MiB:.0f} MiB PSS together")


# --- the file system under the job ----------------------------------------------------------


def test_a_root_swapped_for_a_symlink_after_submission_is_not_followed(faulty_cluster, faults_data_root, photos):
    root, outside = faults_data_root / "swapped", faults_data_root.parent / "outside-the-root"
    root.mkdir()
    outside.mkdir(exist_ok=True)
    names = []
    for path in sorted(photos.rglob("*.jpg"))[:80]:
        names.append(path.name)
        (root / path.name).write_bytes(path.read_bytes())
        (outside / path.name).write_bytes(b"outside the data root")  # read, it would fail differently
    with PodiumClient(faulty_cluster.gateway_address) as client:
        job = client.submit_path(str(root))
        store = JobStore.from_url(faulty_cluster.redis_url)
        while store.get(job.id).finished < 8:
            time.sleep(0.05)
        root.rename(faults_data_root / "swapped-away")
        root.symlink_to(outside)
        during = store.get(job.id)
        assert not during.state.terminal and during.finished < during.total
        for _ in client.watch(job.id):
            pass
        results = list(client.results(job.id))
    assert sorted(r.path for r in results) == sorted(names)
    errors = [r.error for r in results if r.status == pb.IMAGE_STATUS_ERROR]
    assert errors, "the swap came too late to matter"
    assert all("symbolic link" in error for error in errors), set(errors)


def test_file_names_with_markup_and_long_paths_go_through_the_cli(faulty_cluster, photos, tmp_path):
    folder = tmp_path / "names"
    jpeg = next(photos.rglob("*.jpg")).read_bytes()
    long_dir = folder.joinpath(*["d" * 250] * 14)  # ~3.5 KiB of path below the folder
    long_dir.mkdir(parents=True)
    # "[/b]" is a closing tag of rich's markup; "/" also makes "holiday[" a folder.
    names = ["holiday[/b].jpg", "[bold red]x[/bold red].jpg", "[link=x]y[/link].jpg", "a[b]c.jpg"]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(jpeg)
    (long_dir / "deep.jpg").write_bytes(jpeg)
    output = tmp_path / "out.jsonl"
    done = run_cli(
        "submit", str(folder), "--wait", "--output", str(output), "--gateway", faulty_cluster.gateway_address,
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    expected = sorted([*names, str(long_dir.relative_to(folder) / "deep.jpg")])
    assert sorted(line["path"] for line in lines) == expected
    assert all(line["status"] == "ok" for line in lines)
    assert "a[b]c.jpg" in done.stdout and "Traceback" not in done.stderr
    assert POISON_MARK not in jpeg
