"""A JobService on fakes (the store on fakeredis, a recording queue, a fake Triton), for the
gateway's unit tests and the tests that build on its jobs."""

from __future__ import annotations

from gateway.access import ANONYMOUS, Caller
from gateway.model_service import ModelService
from gateway.service import JobOptions, JobService
from gateway.settings import GatewaySettings
from gateway.uploads import FileChunk
from podium.core.jobs import ImageOutcome, Prediction
from tests.support.fakes import FakeClassifiers, FakeQueue, fake_store

OK = ImageOutcome(predictions=(Prediction("archery", 0, 0.9),))


def service(**settings) -> JobService:
    store = fake_store()
    gateway_settings = GatewaySettings(**({"chunk_size": 2, "max_queued_chunks": 2} | settings))
    models = ModelService(gateway_settings, FakeClassifiers().get)
    return JobService(gateway_settings, store, FakeQueue(store), models)


def upload(jobs: JobService, chunks, top_k: int = 0, name: str = "", caller: Caller = ANONYMOUS):
    return jobs.submit_upload(JobOptions(top_k, name), caller, chunks)


def files(*names: str, data: bytes = b"bytes") -> list[FileChunk]:
    return [FileChunk(name, data, True) for name in names]
