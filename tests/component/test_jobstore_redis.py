"""JobStore against a real redis-server: the contract (tests/support/store_contract.py), and
what only the real server can measure."""

from __future__ import annotations

import random

from export.labels import DEFAULT_LABELS, read_labels
from podium.core.jobs import ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore import JobStore
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
