"""JobStore against a real redis-server: the contract (tests/support/store_contract.py), and
what only the real server can measure."""

from __future__ import annotations

import random

from export.labels import DEFAULT_LABELS, read_labels
from podium.core.jobs import ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore import JobStore, Stamp
from podium.stores.resultsink import ResultRow, compact, job_table, open_sink, write_part
from tests.support.store_contract import StoreContract


class TestStoreOnRedis(StoreContract):
    pass


def test_a_finished_image_costs_at_most_300_bytes_of_redis(redis_client):
    """Issue 6's budget: ~300 bytes per finished image (path, top-5 with labels, counters)."""
    labels = read_labels(DEFAULT_LABELS)
    store = JobStore(redis_client, result_ttl_s=3600)
    rng = random.Random(0)
    count = 5000
    before = redis_client.info("memory")["used_memory"]
    job = store.create(mode=JobMode.PATH, top_k=5, chunk_size=16, root="/data")
    for start in range(0, count, 1000):
        store.append_files(job.id, start, [f"events/2024/finals/img_{i:06d}.jpg" for i in range(start, start + 1000)])
    store.finish_upload(job.id)
    for index in range(count):
        chosen = rng.sample(range(len(labels)), 5)
        probabilities = sorted((rng.random() for _ in chosen), reverse=True)
        outcome = ImageOutcome(predictions=tuple(Prediction(labels[i], i, p) for i, p in zip(chosen, probabilities)))
        store.record(job.id, index, outcome)
    assert store.get(job.id).state is JobState.COMPLETED
    per_image = (redis_client.info("memory")["used_memory"] - before) / count
    assert per_image <= 300, f"{per_image:.0f} bytes per finished image"


def test_a_finished_image_of_a_job_with_a_results_sink_costs_redis_at_most_20_bytes(redis_client, tmp_path):
    """With a results sink, answers leave Redis when their chunk's file lands: a 20,000-image
    job, recorded and committed chunk by chunk as workers do, leaves its record only. Measured
    after a first job, as on a running cluster: the scripts loaded, Lua's heap and the
    connection's buffers grown to a chunk's size (they do not grow with the jobs)."""
    url = f"file://{tmp_path}"
    sink, store = open_sink(url), JobStore(redis_client, result_ttl_s=3600)
    sunk_job(store, sink, url, 2000)
    before = redis_client.info("memory")["used_memory"]
    job_id = sunk_job(store, sink, url, 20_000)
    per_image = (redis_client.info("memory")["used_memory"] - before) / 20_000
    print(f"\n{per_image:.2f} bytes of Redis per finished image (results sink)")
    assert per_image <= 20, f"{per_image:.1f} bytes per finished image"
    assert store.job_keys(job_id) == [f"podium:job:{job_id}"]
    assert job_table(sink, job_id).num_rows == 20_000


def sunk_job(store: JobStore, sink, url: str, count: int, size: int = 500) -> str:
    """A job of ``count`` images with a results sink, recorded and committed as workers do."""
    labels = read_labels(DEFAULT_LABELS)
    rng = random.Random(count)
    job = store.create(mode=JobMode.PATH, top_k=5, chunk_size=size, root="/data", results_url=url)
    for start in range(0, count, 1000):
        store.append_files(job.id, start, [f"events/2024/finals/img_{i:06d}.jpg" for i in range(start, start + 1000)])
    store.finish_upload(job.id)
    for chunk, start in enumerate(range(0, count, size)):
        answers = []
        for index in range(start, start + size):
            chosen = rng.sample(range(len(labels)), 5)
            probabilities = sorted((rng.random() for _ in chosen), reverse=True)
            predictions = tuple(Prediction(labels[i], i, p) for i, p in zip(chosen, probabilities))
            answers.append((index, ImageOutcome(predictions=predictions), False))
        stored = store.record_kept(job.id, answers, {index: Stamp(f"{index:064x}") for index, _, _ in answers})
        paths = store.files(job.id, start, start + size)
        rows = [ResultRow(i, p, kept) for (i, _, _), p, kept in zip(answers, paths, stored)]
        write_part(sink, job.id, start, rows, "resnet50_sports:1")
        store.complete_chunk(job.id, chunk)
    assert store.get(job.id).state is JobState.COMPLETED
    assert compact(sink, job.id)
    store.compacted(job.id)
    return job.id
