"""Archive jobs with the real parts: object storage (moto_server, an S3-API server, on
loopback), manifests, the job list, duplicates answered from the result cache, a webhook
receiver on loopback, --max-failed, and the Prometheus endpoints."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
import redis
from PIL import Image

from podium import PodiumClient
from podium.cluster import ClusterSettings, LocalCluster
from podium.cluster.processes import free_port
from podium.core.proto import podium_pb2 as pb
from tests.integration.conftest import AWS, MODEL_NAME
from tests.integration.test_end_to_end import check_against_reference
from tests.support.cli import run_cli
from tests.support.sink import assert_rows_equal_lines, compacted

pytestmark = pytest.mark.integration
SECRET = "webhook-test-secret"
BUCKET = "archive"
RESULTS_BUCKET = "answers"
RESULTS_PREFIX = "podium/results"
# boto3's standard variables: what an operator sets for MinIO or another S3-compatible store.


@pytest.fixture(scope="module")
def archive(model_repository, data_root, s3_server, tmp_path_factory):
    """One worker with the result cache on, batching 8 images per request, signing webhooks,
    reading one bucket and the data root, writing its answers to another."""
    s3_server.create_bucket(Bucket=RESULTS_BUCKET)
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=1,
        gateway_port=0,
        web=False,  # no page: tests/integration/test_web.py tests it
        run_dir=tmp_path_factory.mktemp("archive"),
        service={
            "model_name": MODEL_NAME,
            "chunk_size": 8,
            "decode": "exact",
            "webhook_secret": SECRET,
            # The test's receiver listens on loopback, which webhooks may not reach by default.
            "webhook_allow_networks": "127.0.0.1/32",
            "s3_buckets": BUCKET,
            "results_url": f"s3://{RESULTS_BUCKET}/{RESULTS_PREFIX}",
            "data_roots": str(data_root),
            # Uploads wait for the worker beyond a few unprocessed images: slow enough to be
            # killed in the middle.
            "max_pending_uploads": 8,
            # Eight images per Triton request: the S3 test's held-out folder still matches the
            # PyTorch reference image by image, its broken files still fail alone.
            "images_per_request": 8,
            "inflight": 8,
        },
    )
    with LocalCluster(settings) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def bucket(s3_server, test_folder):
    """The held-out folder under held-out/, with a console's folder marker and a key beside the prefix."""
    s3_server.create_bucket(Bucket=BUCKET)
    for path in sorted(test_folder.root.rglob("*")):
        if path.is_file():
            key = "held-out/" + path.relative_to(test_folder.root).as_posix()
            s3_server.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    s3_server.put_object(Bucket=BUCKET, Key="held-out/empty-folder/", Body=b"")
    s3_server.put_object(Bucket=BUCKET, Key="held-out-elsewhere.jpg", Body=b"not under the prefix")
    return s3_server


@pytest.fixture(scope="module")
def receiver():
    """An HTTP server on loopback that keeps every POST it gets."""
    posts: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.put((self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", posts
    server.shutdown()


def podium(archive, *args: str):
    return run_cli(*args, "--gateway", archive.gateway_address)


def submitted_id(result) -> str:
    line = next(line for line in result.stdout.splitlines() if line.startswith("job ") and "submitted" in line)
    return line.split()[1]


def status(archive, job_id: str) -> dict:
    result = podium(archive, "status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_an_s3_prefix_gives_one_correct_line_per_object(archive, bucket, test_folder, reference):
    result = podium(archive, "submit", f"s3://{BUCKET}/held-out", "--wait", "--show", "0",
                    "--output", f"s3://{BUCKET}/results/held-out.jsonl")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    body = bucket.get_object(Bucket=BUCKET, Key="results/held-out.jsonl")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines()]
    check_against_reference(lines, test_folder, reference)
    job_id = submitted_id(result)
    # Every answer is also in the results bucket, as one compacted Parquet file.
    folder = f"{RESULTS_PREFIX}/{job_id}/"

    def names() -> list[str]:
        listed = bucket.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix=folder).get("Contents", [])
        return sorted(item["Key"].removeprefix(folder) for item in listed)

    assert compacted(names) == ["results.parquet"]
    data = bucket.get_object(Bucket=RESULTS_BUCKET, Key=folder + "results.parquet")["Body"].read()
    assert_rows_equal_lines(pq.read_table(io.BytesIO(data)), lines)
    job = status(archive, job_id)
    assert job["mode"] == "s3" and job["source"] == f"s3://{BUCKET}/held-out/"
    client = redis.Redis.from_url(archive.redis_url)
    try:
        stored = b"".join(client.dump(key) or b"" for key in client.scan_iter(match="podium:job:*"))
    finally:
        client.close()
    assert AWS["AWS_SECRET_ACCESS_KEY"].encode() not in stored  # credentials never enter Redis
    refused = podium(archive, "submit", "s3://someone-elses/photos")
    assert refused.returncode != 0 and "PODIUM_S3_BUCKETS" in refused.stderr + refused.stdout


def test_a_manifest_keeps_its_order_and_its_columns_and_fails_only_bad_lines(archive, bucket, test_folder, reference):
    valid = list(reversed(test_folder.valid))[:4]
    rows = [{"path": f"s3://{BUCKET}/held-out/{rel}", "photographer": f"p{i}"} for i, rel in enumerate(valid)]
    rows.insert(1, {"path": "s3://not-allowed/x.jpg", "photographer": "x"})
    rows.insert(3, {"path": str(test_folder.root / valid[0]), "photographer": "local"})
    rows.append({"path": "/etc/passwd", "photographer": "nobody"})
    manifest = Path(archive.run_dir) / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "photographer"])
        writer.writeheader()
        writer.writerows(rows)
    out = Path(archive.run_dir) / "manifest.jsonl"
    result = podium(archive, "submit", "--manifest", str(manifest), "--wait", "--output", str(out), "--show", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["path"] for line in lines] == [row["path"] for row in rows]
    assert [line["meta"] for line in lines] == [{"photographer": row["photographer"]} for row in rows]
    assert "not one this gateway may read" in lines[1]["error"] and "outside the data roots" in lines[-1]["error"]
    checked = 0
    for line in lines:
        rel = line["path"].removeprefix(f"s3://{BUCKET}/held-out/").removeprefix(f"{test_folder.root}/")
        if rel in valid:
            assert line["status"] == "ok", line
            expected = reference[rel]
            assert line["top_k"][0]["index"] == int(expected.argmax()), rel
            assert all(abs(p["probability"] - expected[p["index"]]) <= 1e-3 for p in line["top_k"]), rel
            checked += 1
    assert checked == len(valid) + 1


def test_a_second_submit_is_answered_from_the_cache_with_identical_results(archive, test_folder, tmp_path):
    runs = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.jsonl"
        result = podium(archive, "submit", str(test_folder.root), "--wait", "--output", str(out), "--name", name)
        assert result.returncode == 0, result.stdout + result.stderr
        runs.append(
            (status(archive, submitted_id(result)), [json.loads(line) for line in out.read_text().splitlines()])
        )
    (first, first_lines), (second, second_lines) = runs
    assert second["cached"] == second["succeeded"] == len(test_folder.valid)
    assert second_lines == first_lines

    listed = podium(archive, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert [job["id"] for job in jobs[:2]] == [second["id"], first["id"]]  # newest first
    for job in jobs:
        assert {"id", "name", "state", "total", "succeeded", "failed", "cached", "created_at"} <= set(job)
    assert jobs[0]["state"] == "completed" and jobs[0]["name"] == "second"
    only_first = json.loads(podium(archive, "jobs", "--json", "--name", "firs").stdout)
    assert [job["id"] for job in only_first] == [first["id"]]
    table = podium(archive, "jobs")
    assert first["id"] in table.stdout and second["id"] in table.stdout


def test_a_webhook_receiver_gets_the_signed_completion_post(archive, receiver, test_folder):
    url, posts = receiver
    result = podium(
        archive, "submit", str(test_folder.root), "--wait", "--webhook", f"{url}/done?token=t", "--show", "0"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = submitted_id(result)
    path, headers, body = posts.get(timeout=30)
    assert path == "/done?token=t"
    # The receiver checks with its tenant's key, as `podium webhook-key` gives it to the tenant.
    printed = subprocess.run(
        [sys.executable, "-m", "podium", "webhook-key"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PODIUM_WEBHOOK_SECRET": SECRET},
    )
    key = printed.stdout.strip()
    assert len(key) == 64 and key != SECRET
    signed = headers["X-Podium-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Podium-Signature"], expected)
    assert abs(int(headers["X-Podium-Timestamp"]) - time.time()) < 120
    sent = json.loads(body)
    job = status(archive, job_id)
    assert sent == {
        key: job[key] for key in ("name", "state", "total", "succeeded", "failed", "cached", "finished_at")
    } | {"job_id": job_id}
    assert sent["state"] == "completed" and sent["total"] == len(test_folder.visible)
    assert posts.empty()  # one POST per job


def test_a_webhook_to_an_internal_address_is_refused_at_submit(archive, receiver, test_folder):
    """Only 127.0.0.1 is opened here: the metadata address, ::1 and other loopback spellings are not."""
    port = receiver[0].rsplit(":", 1)[1]
    for url in ("http://169.254.169.254/latest/meta-data/", f"http://[::1]:{port}/", f"http://127.0.0.2:{port}/"):
        result = podium(archive, "submit", str(test_folder.root), "--webhook", url)
        assert result.returncode != 0 and "PODIUM_WEBHOOK_ALLOW_NETWORKS" in result.stderr + result.stdout
    assert receiver[1].empty()


def test_too_many_failures_stop_the_job_and_every_file_still_gets_a_line(archive, test_folder, tmp_path):
    folder = tmp_path / "wrong-folder"
    folder.mkdir()
    for i in range(40):
        (folder / f"notes-{i:02d}.jpg").write_text(f"not a photo {i}")
    out = tmp_path / "out.jsonl"
    result = podium(archive, "submit", str(folder), "--wait", "--output", str(out), "--max-failed", "3", "--show", "0")
    assert result.returncode == 3, result.stdout + result.stderr  # the job did not complete
    job = status(archive, submitted_id(result))
    assert job["state"] == "failed" and job["max_failed"] == "3"
    assert "more than the job allows (max_failed 3)" in job["error"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["path"] for line in lines) == sorted(p.name for p in folder.iterdir())
    assert all(line["status"] == "error" for line in lines)
    assert any("not processed" in line["error"] for line in lines)
    bad = podium(archive, "submit", str(folder), "--max-failed", "lots")
    assert bad.returncode != 0 and "max_failed" in bad.stderr + bad.stdout


def scrape(url: str) -> dict[str, float]:
    """Samples of a Prometheus text page: 'name{labels}' -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        value for key, value in samples.items() if key.split("{")[0] == name and all(label in key for label in wanted)
    )


def test_the_metrics_count_what_the_jobs_did(archive):
    urls = archive.metrics_urls
    assert set(urls) == {"triton", "gateway", "worker-1"}
    jobs = json.loads(podium(archive, "jobs", "--json").stdout)
    assert jobs, "runs after the tests above"
    worker = scrape(urls["worker-1"])
    # Every ok image went through the worker; some failures were the gateway's (manifest lines it may not read).
    assert total(worker, "podium_images_processed_total", status="ok") == sum(job["succeeded"] for job in jobs)
    assert 0 < total(worker, "podium_images_processed_total", status="error") <= sum(job["failed"] for job in jobs)
    assert total(worker, "podium_images_processed_total", source="cache") == sum(job["cached"] for job in jobs)
    assert total(worker, "podium_result_cache_lookups_total", result="hit") >= sum(j["cached"] for j in jobs) > 0
    assert total(worker, "podium_image_stage_seconds_count", stage="inference") > 0
    gateway = scrape(urls["gateway"])
    assert total(gateway, "podium_jobs_submitted_total") == len(jobs)
    assert total(gateway, "podium_jobs_submitted_total", mode="s3") == 1
    assert total(gateway, "podium_webhooks_total", outcome="delivered") == 1
    assert total(gateway, "podium_result_cache_entries") > 0 and total(gateway, "podium_active_jobs") == 0
    assert total(gateway, "podium_queue_depth") == 0
    assert total(scrape(urls["triton"]), "nv_inference_count") > 0


def noise_photos(folder: Path, count: int) -> list[str]:
    """Distinct small JPEGs (none a duplicate: the cache must not speed the job up)."""
    rng = np.random.default_rng(7)
    folder.mkdir()
    for i in range(count):
        pixels = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"frame-{i:04d}.jpg", quality=90)
    return sorted(path.name for path in folder.iterdir())


def test_a_keyed_submit_killed_mid_upload_and_run_again_ends_with_one_line_per_file(archive, tmp_path):
    names = noise_photos(tmp_path / "keyed", 240)
    out = tmp_path / "keyed.jsonl"
    command = ["submit", str(tmp_path / "keyed"), "--job-key", "keyed-1", "--name", "keyed", "--wait"]
    command += ["--output", str(out), "--show", "0", "--gateway", archive.gateway_address]
    first = subprocess.Popen(
        [sys.executable, "-m", "podium", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    with PodiumClient(archive.gateway_address) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listed = list(client.list_jobs(name="keyed"))
            if listed and listed[0].state == pb.JOB_STATE_UPLOADING and listed[0].total >= 64:
                break
            time.sleep(0.1)
        first.kill()  # the client dies mid-upload
        first.wait(30)
        (broken,) = list(client.list_jobs(name="keyed"))
    assert broken.state == pb.JOB_STATE_UPLOADING and 64 <= broken.total < len(names), broken

    again = run_cli(*command)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["path"] for line in lines) == names  # exactly one line per file
    assert all(line["status"] == "ok" for line in lines)
    with PodiumClient(archive.gateway_address) as client:
        (job,) = list(client.list_jobs(name="keyed"))  # one job
        assert job.id == broken.id and job.total == len(names) and job.state == pb.JOB_STATE_COMPLETED


def test_delete_leaves_no_key_and_the_job_leaves_the_list(archive, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a photo")
    job_id = submitted_id(podium(archive, "submit", str(folder), "--wait", "--show", "0"))
    s3 = boto3.client("s3")
    files = f"{RESULTS_PREFIX}/{job_id}/"
    assert compacted(lambda: [o["Key"].removeprefix(files) for o in s3.list_objects_v2(
        Bucket=RESULTS_BUCKET, Prefix=files).get("Contents", [])]) == ["results.parquet"]  # fmt: skip
    assert podium(archive, "delete", job_id).returncode == 0
    assert s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix=files).get("KeyCount") == 0  # its files went too
    client = redis.Redis.from_url(archive.redis_url)
    try:
        assert list(client.scan_iter(match=f"*{job_id}*")) == []
    finally:
        client.close()
    assert job_id not in podium(archive, "jobs", "--json").stdout
