"""JobStore on fakeredis (its Lua scripts run in lupa): the contract, and the hash schema."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from podium.core.jobs import JobMode, JobState
from podium.stores.jobstore import JobStore, scripts
from podium.stores.jobstore.errors import StoreFull, StoreUnavailable
from podium.stores.jobstore.schema import JOB_HASH, job_field_names
from tests.support.fakes import FakeRedis
from tests.support.store_contract import StoreContract


class TestStoreOnFakeRedis(StoreContract):
    @pytest.fixture
    def redis_client(self):
        return FakeRedis()


def test_memory_use_is_a_fraction_of_maxmemory():
    client = FakeRedis()
    assert JobStore(client).memory_used_fraction() is None  # no limit set
    client.used_memory, client.maxmemory = 300, 1200
    assert JobStore(client).memory_used_fraction() == 0.25


def test_the_hash_schema_holds_every_field_of_job():
    assert JOB_HASH.public_names == job_field_names()


def test_scripts_name_only_fields_of_the_schema():
    for name in ("RECORD_RESULT", "FINISH_UPLOAD", "DISPATCH_CHUNKS", "END_JOB", "COMPLETE_CHUNK", "COUNT_ATTEMPT"):
        assert "$" not in getattr(scripts, name), name  # every $field was filled in


def test_a_job_reads_back_as_written():
    client = fakeredis.FakeRedis()
    store = JobStore(client)
    job = store.create(mode=JobMode.PATH, top_k=3, chunk_size=8, name="finals", root="/data/finals")
    again = store.get(job.id)
    assert again == job
    assert (again.state, again.mode, again.top_k, again.name, again.root) == (
        JobState.UPLOADING,
        JobMode.PATH,
        3,
        "finals",
        "/data/finals",
    )


def test_redis_errors_leave_the_store_converted():
    down = fakeredis.FakeServer()
    down.connected = False
    broken = JobStore(fakeredis.FakeRedis(server=down))
    with pytest.raises(StoreUnavailable, match="unavailable"):
        broken.get("x" * 32)

    class FullRedis(fakeredis.FakeRedis):
        def hgetall(self, *args, **kwargs):
            raise redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'")

    with pytest.raises(StoreFull, match="full"):
        JobStore(FullRedis()).get("x" * 32)
