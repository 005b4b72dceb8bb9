"""Chunks sized by time: workers note their rate, the gateway sizes new jobs from it."""

from __future__ import annotations

import fakeredis
import pytest

from podium.stores.jobstore.chunk_rates import KEPT_RATES, MIN_MEASURED_IMAGES, ChunkRates, chunk_size_for


@pytest.mark.parametrize(
    ("rate", "seconds", "size"),
    [
        (None, 1.0, 16),  # nothing measured yet: PODIUM_CHUNK_SIZE
        (3.5, 1.0, 16),  # a CPU ResNet50: never below the least
        (100.0, 1.0, 64),  # a power of two, at most a second's work
        (300.0, 1.0, 256),
        (5000.0, 1.0, 256),  # a GPU: at most the most
        (500.0, 0.0, 16),  # sizing by time off
        (500.0, 0.25, 64),
        (0.0, 1.0, 16),
    ],
)
def test_a_chunk_is_about_a_second_of_one_workers_time(rate, seconds, size):
    assert chunk_size_for(rate, seconds, least=16, most=256) == size


def test_workers_note_rates_that_the_gateway_reads():
    rates = ChunkRates(fakeredis.FakeRedis())
    assert rates.rate("m") is None
    rates.note("m", MIN_MEASURED_IMAGES - 1, 0.01)  # too few images to say anything
    assert rates.rate("m") is None
    rates.note("m", 64, 0.5)
    assert rates.rate("m") == pytest.approx(128.0)
    assert rates.rate("other") is None


def test_one_odd_chunk_does_not_size_the_next_job():
    """A chunk that waited on Triton, or one whose answers all came from the cache, is one
    note among the recent ones: the gateway sizes by their median."""
    rates = ChunkRates(fakeredis.FakeRedis())
    for _ in range(6):
        rates.note("fast", 512, 0.6)  # ~853 img/s
    rates.note("fast", 512, 1.6)  # the job's last chunk, stranded in Triton's queue
    assert chunk_size_for(rates.rate("fast"), 1.0, 16, 1024) == 512
    for _ in range(4):
        rates.note("slow", 16, 0.9)  # a CPU ResNet50
    rates.note("slow", 16, 0.002)  # every answer from the result cache
    assert chunk_size_for(rates.rate("slow"), 1.0, 16, 1024) == 16


def test_only_the_recent_notes_count():
    client = fakeredis.FakeRedis()
    rates = ChunkRates(client)
    for _ in range(KEPT_RATES):
        rates.note("m", 10, 1.0)
    for _ in range(KEPT_RATES // 2 + 1):
        rates.note("m", 100, 1.0)
    assert rates.rate("m") == pytest.approx(100.0)  # the majority of what is kept
    assert client.llen(b"podium:chunk-rates:m") == KEPT_RATES
    assert 0 < client.ttl(b"podium:chunk-rates:m") <= 3600


def test_by_default_a_worker_decoding_small_jpegs_gets_about_a_seconds_worth():
    """A chunk costs its worker milliseconds whatever its size: a worker that decodes ~850
    224x224 JPEGs a second (a GPU's, or the stand-in's) is not held to 256."""
    from gateway.settings import GatewaySettings

    settings = GatewaySettings()
    assert chunk_size_for(850.0, settings.chunk_seconds, settings.chunk_size, settings.max_chunk_size) == 512
    assert chunk_size_for(5000.0, settings.chunk_seconds, settings.chunk_size, settings.max_chunk_size) == 1024
