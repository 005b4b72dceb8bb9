"""End to end with the real parts: CLI -> gateway -> Redis -> Celery -> Triton -> results.

Every valid image must match an independent PyTorch reference (same checkpoint,
torchvision's eval transform): same top-1, probabilities within 1e-3."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tritonclient.grpc as grpcclient

from podium import PodiumClient
from podium.client.output import result_record
from podium.core.proto import podium_pb2 as pb
from tests.integration.conftest import MODEL_NAME
from tests.support.cli import run_cli
from tests.support.images import png_claiming
from tests.support.sink import as_records, assert_rows_equal_lines, compacted

pytestmark = pytest.mark.integration
TOLERANCE = 1e-3


def check_against_reference(records: list[dict], test_folder, reference) -> None:
    by_path = {r["path"]: r for r in records}
    assert len(by_path) == len(records), "a file got two lines"
    assert sorted(by_path) == test_folder.visible, "every visible file gets exactly one line, hidden ones none"
    for rel, description in test_folder.broken.items():
        record = by_path[rel]
        assert record["status"] == "error" and record["error"], f"{rel} ({description}) should fail"
        assert record["top_k"] == []
    for rel in test_folder.valid:
        record = by_path[rel]
        assert record["status"] == "ok", f"{rel}: {record['error']}"
        expected = reference[rel]
        assert record["top_k"][0]["index"] == int(np.argmax(expected)), rel
        for prediction in record["top_k"]:
            assert abs(prediction["probability"] - expected[prediction["index"]]) <= TOLERANCE, rel
        probabilities = [p["probability"] for p in record["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True)


def test_the_checkpoint_tells_images_apart(reference):
    top1 = Counter(int(np.argmax(p)) for p in reference.values())
    assert len(top1) >= 5, f"the test model answers too few classes: {top1}"


def test_cli_upload_matches_pytorch(cluster, test_folder, reference, tmp_path):
    output = tmp_path / "out.jsonl"
    done = run_cli(
        "submit", str(test_folder.root), "--wait", "--output", str(output), "--gateway", cluster.gateway_address
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "completed" in done.stdout and "images/s" in done.stdout
    records = [json.loads(line) for line in output.read_text().splitlines()]
    check_against_reference(records, test_folder, reference)


def test_csv_output(cluster, test_folder, tmp_path):
    output = tmp_path / "out.csv"
    done = run_cli(
        "submit",
        str(test_folder.root),
        "--wait",
        "--output",
        str(output),
        "--top-k",
        "2",
        "--gateway",
        cluster.gateway_address,
    )
    assert done.returncode == 0, done.stderr
    lines = output.read_text().splitlines()
    assert lines[0] == "path,status,label,index,probability,error,top_k"
    assert len(lines) == 1 + len(test_folder.visible)


def test_two_jobs_at_once_give_identical_results(cluster, test_folder, reference):
    outcomes: dict[int, list[dict]] = {}

    def run(slot: int) -> None:
        with PodiumClient(cluster.gateway_address) as client:
            job = client.submit_folder(test_folder.root, top_k=3)
            for update in client.watch(job.id):
                last = update
            assert last.state == pb.JOB_STATE_COMPLETED
            assert last.succeeded + last.failed == last.total == len(test_folder.visible)
            assert last.failed == len(test_folder.broken)
            outcomes[slot] = [result_record(r) for r in client.results(job.id)]

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert set(outcomes) == {0, 1}
    assert outcomes[0] == outcomes[1]
    check_against_reference(outcomes[0], test_folder, reference)


def test_path_mode_matches_upload(cluster, test_folder, reference):
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_path("mixed")
        assert job.mode == "path" and job.total == len(test_folder.visible)
        records = [result_record(r) for r in client.results(job.id, follow=True)]
    check_against_reference(records, test_folder, reference)


def test_every_answer_lands_in_a_parquet_file_equal_to_the_results(cluster, test_folder, reference, tmp_path):
    """podium up's default sink: RUN_DIR/results/JOB_ID/results.parquet, one row per image."""
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_path("mixed")
        lines = [result_record(r) for r in client.results(job.id, follow=True)]
        assert client.get_job(job.id).state == pb.JOB_STATE_COMPLETED
    folder = Path(cluster.run_dir) / "results" / job.id
    assert compacted(lambda: sorted(os.listdir(folder))) == ["results.parquet"]
    table = pq.read_table(folder / "results.parquet")
    assert_rows_equal_lines(table, lines)
    check_against_reference(as_records(table), test_folder, reference)
    rows = table.to_pylist()
    for row in rows:
        data = (test_folder.root / row["path"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest(), row["path"]
        assert row["model"] == job.spec.model and job.spec.model.startswith(f"{MODEL_NAME}:")
        if row["status"] == "ok":
            assert (row["label"], row["probability"]) == (row["top_k"][0]["label"], row["top_k"][0]["probability"])
    times = [row["finished_at"].timestamp() for row in rows]
    assert job.created_at - 1 <= min(times) and max(times) <= time.time() + 1
    # `podium results --format parquet` writes the same rows (its probabilities came through the API's float).
    exported = tmp_path / "exported.parquet"
    done = run_cli(
        "results", job.id, "--format", "parquet", "--output", str(exported), "--gateway", cluster.gateway_address
    )
    assert done.returncode == 0, done.stderr + done.stdout
    theirs = pq.read_table(exported)
    assert theirs.drop_columns(["probability", "top_k"]).equals(table.drop_columns(["probability", "top_k"]))
    assert_rows_equal_lines(theirs, lines)


def test_results_follow_streams_while_the_job_runs(cluster, test_folder):
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_folder(test_folder.root)
        indices = [r.index for r in client.results(job.id, follow=True)]
        assert indices == list(range(len(test_folder.visible)))
        assert client.get_job(job.id).state == pb.JOB_STATE_COMPLETED


def test_synchronous_classify_and_classes(cluster, test_folder, reference):
    chosen = test_folder.valid[:4]
    with PodiumClient(cluster.gateway_address) as client:
        classes = client.classes()
        results = client.classify([test_folder.root / rel for rel in chosen], top_k=3)
    assert len(classes.classes) == 100 and classes.model_name == "resnet50_sports" and not classes.untrained
    for rel, result in zip(chosen, results):
        assert result.status == pb.IMAGE_STATUS_OK
        assert result.top_k[0].index == int(np.argmax(reference[rel]))
        assert abs(result.top_k[0].probability - reference[rel][result.top_k[0].index]) <= TOLERANCE


def test_cancel_leaves_one_line_per_image(cluster, tmp_path, test_folder):
    folder = tmp_path / "many"
    folder.mkdir()
    image = (test_folder.root / test_folder.valid[0]).read_bytes()
    suffix = Path(test_folder.valid[0]).suffix
    for i in range(300):
        (folder / f"{i:04d}{suffix}").write_bytes(image)
    with PodiumClient(cluster.gateway_address) as client:
        job = client.submit_folder(folder)
        cancelled = client.cancel(job.id)
        assert cancelled.state == pb.JOB_STATE_CANCELLED
        results = list(client.results(job.id))
    assert [r.index for r in results] == list(range(300))
    assert any("cancelled" in r.error for r in results)


def test_triton_formed_batches_larger_than_one(cluster):
    client = grpcclient.InferenceServerClient(cluster.triton_url)
    try:
        stats = client.get_inference_statistics("resnet50_sports", as_json=True)
    finally:
        client.close()
    batches = {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats["model_stats"][0]["batch_stats"]}
    assert any(size > 1 and count > 0 for size, count in batches.items()), batches


def test_hostile_files_fail_alone(cluster, test_folder, data_root):
    folder = data_root / "hostile"
    folder.mkdir()
    good = test_folder.root / test_folder.valid[0]
    (folder / "good.jpg").write_bytes(good.read_bytes())
    (folder / "bomb.png").write_bytes(png_claiming(30_000, 30_000))
    (folder / "random.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    (folder / "script.png").write_text("#!/bin/sh\necho not an image\n")
    secret = data_root.parent / "secret.jpg"
    secret.write_bytes(good.read_bytes())
    (folder / "link.jpg").symlink_to(secret)  # points outside the data root
    with PodiumClient(cluster.gateway_address) as client:
        for job in (client.submit_folder(folder), client.submit_path("hostile")):
            records = {r.path: r for r in client.results(job.id, follow=True)}
            assert records["good.jpg"].status == pb.IMAGE_STATUS_OK
            assert "too large" in records["bomb.png"].error
            assert "not a recognised image" in records["random.jpg"].error
            assert "not a recognised image" in records["script.png"].error
        # Uploaded, the link is the client's own file; in path mode it is never read.
    assert "symbolic link" in records["link.jpg"].error


def test_shared_memory_and_grpc_carry_the_same_pixels(cluster, test_folder):
    """The workers here send pixels through shared memory (Triton is on this machine); a
    remote Triton gets them over gRPC. Both ways, the real Triton answers the same."""
    from podium.core.imaging import Decoder
    from podium.stores.inference import TritonClassifier
    from podium.stores.inference.shared_memory import PREFIX, SharedMemorySlots

    decoder = Decoder()
    pixels = np.stack([decoder.model_input((test_folder.root / name).read_bytes()) for name in test_folder.valid[:8]])
    shared = SharedMemorySlots(cluster.triton_url, slots=2, images_per_request=8, timeout_s=30.0)
    by_wire = TritonClassifier(cluster.triton_url, "resnet50_sports", 30.0)
    by_memory = TritonClassifier(cluster.triton_url, "resnet50_sports", 30.0, shared=shared)
    status = grpcclient.InferenceServerClient(cluster.triton_url)
    try:
        wire, memory = by_wire.infer(pixels), by_memory.infer(pixels)
        ours = [
            name
            for name in status.get_system_shared_memory_status(as_json=True).get("regions", {})
            if name.startswith(f"{PREFIX}{os.getpid()}-")
        ]
        assert len(ours) == 2, "the request did not go through this process's shared memory"
        np.testing.assert_allclose(memory.probabilities, wire.probabilities, atol=1e-5)
        assert (memory.probabilities.argmax(1) == wire.probabilities.argmax(1)).all()
    finally:
        by_wire.close()
        by_memory.close()
        shared.close()
    left = status.get_system_shared_memory_status(as_json=True).get("regions", {})
    status.close()
    assert not [name for name in left if name.startswith(f"{PREFIX}{os.getpid()}-")]
