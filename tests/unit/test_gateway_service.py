"""JobService on fakes (tests/support/gateway.py): jobs and their options, owners, path listings,
models, results and deletion. Uploads: test_gateway_uploads.py; results sinks and delta jobs:
test_gateway_results.py."""

from __future__ import annotations

import os

import pytest

from gateway.access import ANONYMOUS, Caller
from gateway.job_reading import CANCELLED_ERROR
from gateway.model_service import ModelService
from gateway.service import JobOptions
from gateway.settings import GatewaySettings
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from podium.core.jobs import JobMode, JobState
from tests.support.fakes import CLASSES, FakeClassifier, png_bytes
from tests.support.gateway import OK, files, service, upload


def test_too_many_active_jobs_are_refused():
    jobs = service(max_active_jobs=1)
    jobs.store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=1)
    with pytest.raises(ResourceExhausted, match="already runs 1 jobs"):
        upload(jobs, files("a"))


@pytest.mark.parametrize(("top_k", "name"), [(1001, ""), (-1, ""), (5, "x" * 201)])
def test_bad_options_are_invalid_arguments(top_k, name):
    with pytest.raises(InvalidArgument):
        upload(service(), files("a"), top_k, name)


def test_path_mode_lists_the_folder_under_a_data_root(tmp_path):
    (tmp_path / "finals" / "day1").mkdir(parents=True)
    for name in ("finals/b.jpg", "finals/a.jpg", "finals/day1/c.jpg", "finals/.hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    jobs = service(data_roots=str(tmp_path))
    job = jobs.submit_path("finals", JobOptions(2), ANONYMOUS)
    assert (job.mode, job.total, job.root) == (JobMode.PATH, 3, str(tmp_path / "finals"))
    assert jobs.store.files(job.id, 0, 3) == ["a.jpg", "b.jpg", "day1/c.jpg"]
    with pytest.raises(InvalidArgument, match="outside the data roots"):
        jobs.submit_path("/etc", JobOptions(2), ANONYMOUS)
    with pytest.raises(FailedPrecondition, match="path mode is off"):
        service().submit_path(str(tmp_path), JobOptions(2), ANONYMOUS)


def test_results_of_a_cancelled_job_give_every_image_one_line():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 1, OK)
    jobs.cancel(job.id, ANONYMOUS)
    results = list(jobs.results(job.id, ANONYMOUS, 0, follow=True, is_active=lambda: True))
    assert [(r.index, r.path) for r in results] == [(0, "a"), (1, "b"), (2, "c")]
    assert results[1].outcome == OK
    assert results[0].outcome.error == results[2].outcome.error == CANCELLED_ERROR


def test_results_without_follow_skip_unfinished_images():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 2, OK)
    assert [r.index for r in jobs.results(job.id, ANONYMOUS, 0, follow=False, is_active=lambda: True)] == [2]
    assert [r.index for r in jobs.results(job.id, ANONYMOUS, 3, follow=False, is_active=lambda: True)] == []
    with pytest.raises(InvalidArgument):
        list(jobs.results(job.id, ANONYMOUS, -1, follow=False, is_active=lambda: True))


def test_watch_ends_with_the_first_terminal_state():
    jobs = service()
    job = upload(jobs, files("a", "b"))
    for index in range(2):
        jobs.store.record(job.id, index, OK)
    seen = list(jobs.watch(job.id, ANONYMOUS, is_active=lambda: True))
    assert seen[-1].state is JobState.COMPLETED and seen[-1].succeeded == 2


def test_unknown_jobs_are_not_found():
    jobs = service()
    for call in (
        lambda: jobs.get("0" * 32, ANONYMOUS),
        lambda: jobs.cancel("0" * 32, ANONYMOUS),
        lambda: jobs.delete("0" * 32, ANONYMOUS),
        lambda: list(jobs.watch("0" * 32, ANONYMOUS, lambda: True)),
        lambda: list(jobs.results("0" * 32, ANONYMOUS, 0, False, lambda: True)),
    ):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("job_id", ["", "nope", "0" * 31, "G" * 32, "0" * 32 + ":results", "../" * 20])
def test_malformed_job_ids_are_invalid_arguments(job_id):
    with pytest.raises(InvalidArgument, match="is not a job id"):
        service().get(job_id, ANONYMOUS)


def test_a_job_belongs_to_the_key_that_created_it():
    jobs = service()
    alice, bob, admin = Caller("alice"), Caller("bob"), Caller("root", admin=True)
    job = upload(jobs, files("a"), caller=alice)
    assert jobs.get(job.id, alice).owner == "alice" and jobs.get(job.id, admin).id == job.id
    for action in (jobs.get, jobs.cancel, jobs.delete):
        with pytest.raises(NotFound):
            action(job.id, bob)
    jobs.delete(job.id, alice)
    assert jobs.store.job_keys(job.id) == []


def test_delete_leaves_no_key_of_the_job():
    jobs = service()
    job = upload(jobs, files("a", "b", "c"))
    jobs.store.record(job.id, 0, OK)
    assert jobs.store.acquire_chunk(job.id, 0, "w", 60).taken  # a lease, as a running worker has
    jobs.delete(job.id, ANONYMOUS)
    assert jobs.store.job_keys(job.id) == []
    assert jobs.store.active_jobs() == 0
    with pytest.raises(NotFound):
        jobs.get(job.id, ANONYMOUS)


def test_new_jobs_are_refused_above_the_redis_high_water_mark(monkeypatch):
    jobs = service(redis_high_water=0.8)
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: 0.85)
    with pytest.raises(ResourceExhausted, match="85% full"):
        upload(jobs, files("a"))
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: 0.5)
    assert upload(jobs, files("a")).total == 1


def test_paths_are_limited_and_counted():
    with pytest.raises(InvalidArgument, match="longer than 4096 bytes"):
        upload(service(), files("a" * 4097))
    with pytest.raises(ResourceExhausted, match="limit of 100 bytes"):
        upload(service(max_upload_bytes=100), files("p" * 98, data=b"xyz"))


def test_unreadable_and_linked_folders_get_error_lines(tmp_path, monkeypatch):
    (tmp_path / "job" / "locked").mkdir(parents=True)
    (tmp_path / "job" / "a.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "job" / "link").symlink_to(tmp_path / "elsewhere")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    jobs = service(data_roots=str(tmp_path))
    job = jobs.submit_path("job", JobOptions(), ANONYMOUS)
    results = dict(jobs.store.results(job.id, 0, 10))
    assert results["a.jpg"] is None
    assert results["link"].error == "symbolic link to a folder; not followed"
    assert results["locked"].error == "folder cannot be read: Permission denied"


def test_a_job_pins_its_model_version_and_an_unknown_model_is_not_found():
    jobs = service()
    job = upload(jobs, files("a"))
    assert (job.model_name, job.model_version) == ("resnet50_sports", "1")
    pinned = jobs.submit_upload(JobOptions(model="resnet50_sports:1"), ANONYMOUS, files("a"))
    assert pinned.model_version == "1"
    for unknown in ("nope", "resnet50_sports:7"):
        with pytest.raises(NotFound, match="is not served"):
            jobs.submit_upload(JobOptions(model=unknown), ANONYMOUS, files("a"))
    with pytest.raises(InvalidArgument, match="NAME or NAME:VERSION"):
        jobs.submit_upload(JobOptions(model="../x"), ANONYMOUS, files("a"))
    assert jobs.store.active_jobs() == 2  # refused before a job was made


def test_classify_answers_from_the_model_and_refuses_bad_requests():
    fake = FakeClassifier()
    model = ModelService(GatewaySettings(classify_max_images=2), lambda ref: fake)
    outcomes = model.classify([("dark.png", png_bytes(10)), ("junk", b"not an image")], top_k=2)
    assert outcomes[0].predictions[0].label == CLASSES[0] and len(outcomes[0].predictions) == 2
    assert "not a recognised image format" in outcomes[1].error
    with pytest.raises(InvalidArgument, match="at most 2 images"):
        model.classify([("a", b"")] * 3, top_k=1)
    with pytest.raises(InvalidArgument, match="at least one image"):
        model.classify([], top_k=1)
    fake.down = True
    with pytest.raises(Unavailable, match="connection refused"):
        model.classify([("a", png_bytes(10))], top_k=1)


def test_job_options_are_fields_of_the_api_job_spec():
    import dataclasses

    from podium.core.proto import podium_pb2 as pb

    spec_fields = {field.name for field in pb.JobSpec.DESCRIPTOR.fields}
    assert {option.name for option in dataclasses.fields(JobOptions)} <= spec_fields


def test_a_long_listing_stops_when_redis_fills_up(monkeypatch):
    """Room is checked at every batch of paths appended, not only when the job is created."""
    from podium.core.jobs import JobState

    jobs = service(redis_high_water=0.8)
    readings = iter([0.5, 0.5, 0.85])  # at creation, after the first batch, then full
    monkeypatch.setattr(jobs.store, "memory_used_fraction", lambda: next(readings, 0.85))
    lines = (f"s3://none/{i}.jpg" for i in range(5000))
    with pytest.raises(ResourceExhausted, match="85% full"):
        jobs.submit_manifest(lines, JobOptions(), ANONYMOUS)
    (job,) = jobs.store.list_jobs(10, "", lambda job: True).jobs
    assert job.state is JobState.FAILED and "full" in job.error
    assert job.total <= 1000  # stopped after the first batch


def test_a_manifest_line_too_long_is_stored_cut(monkeypatch):
    from gateway.uploads import MAX_PATH_BYTES

    jobs = service()
    job = jobs.submit_manifest(["x" * 1024**2, "ok.jpg"], JobOptions(), ANONYMOUS)
    stored = jobs.store.files(job.id, 0, 2)
    assert len(stored[0].encode()) <= MAX_PATH_BYTES + 3 and stored[0].endswith("…") and stored[1] == "ok.jpg"
    assert "longer than" in jobs.store.results(job.id, 0, 1)[0][1].error


def test_one_owner_cannot_queue_more_than_its_share():
    from gateway.access import Caller

    jobs = service(max_queued_images_per_owner=5, chunk_size=100)  # nothing is worked on: all 5 wait
    owner_a, owner_b = Caller("owner-a"), Caller("owner-b")
    jobs.submit_upload(JobOptions(), owner_a, files(*[f"{i}.jpg" for i in range(5)]))
    with pytest.raises(ResourceExhausted, match="5 images waiting"):
        jobs.submit_upload(JobOptions(), owner_a, files("more.jpg"))
    assert jobs.submit_upload(JobOptions(), owner_b, files("b.jpg")).total == 1  # another owner is not held up
    with pytest.raises(ResourceExhausted, match="at most 5 may wait"):
        jobs.submit_manifest([f"s3://none/{i}.jpg" for i in range(10)], JobOptions(), owner_b)


def test_a_new_jobs_chunks_are_sized_by_the_workers_rate(tmp_path):
    from podium.stores.jobstore.chunk_rates import ChunkRates

    (tmp_path / "a.jpg").write_bytes(png_bytes(20))
    jobs = service(chunk_size=4, max_chunk_size=64, data_roots=str(tmp_path))

    def path_job(name: str = ""):
        return jobs.submit_path(str(tmp_path), JobOptions(0, name), ANONYMOUS)

    def first_chunk_size(job) -> int:
        return jobs.store.chunk_layout(job.id).span(0)[1]

    assert first_chunk_size(path_job()) == 4  # nothing measured yet
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 40, 1.0)  # 40 images a second
    assert first_chunk_size(path_job()) == 32
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 4000, 1.0)
    assert first_chunk_size(path_job()) == 64
    assert first_chunk_size(upload(jobs, files("b.jpg"))) == 64
    # An upload's chunks take at most a quarter of the unprocessed files it may hold.
    held = service(chunk_size=4, max_chunk_size=64, max_pending_uploads=32)
    ChunkRates(held.store.client).note(held.settings.model_name, 4000, 1.0)
    assert held.store.chunk_layout(upload(held, files("b.jpg")).id).span(0)[1] == 8
    fixed = service(chunk_size=4, chunk_seconds=0, data_roots=str(tmp_path))
    ChunkRates(fixed.store.client).note(fixed.settings.model_name, 4000, 1.0)
    assert fixed.store.chunk_layout(fixed.submit_path(str(tmp_path), JobOptions(0, ""), ANONYMOUS).id).span(0)[1] == 4


def test_a_path_jobs_chunks_grow_once_the_workers_measure_a_rate(tmp_path):
    """A fresh cluster's first big job: its first chunks are the fewest images, the later
    ones sized by the rate the first ones measured."""
    from podium.stores.jobstore.chunk_rates import ChunkRates

    for i in range(40):
        (tmp_path / f"{i:02d}.jpg").write_bytes(png_bytes(20))
    jobs = service(chunk_size=4, max_chunk_size=16, max_queued_chunks=2, data_roots=str(tmp_path))
    job = jobs.submit_path(str(tmp_path), JobOptions(0, ""), ANONYMOUS)
    assert jobs.store.dispatched_chunks(job.id) == 2  # 0 and 1, of 4 images each
    ChunkRates(jobs.store.client).note(jobs.settings.model_name, 12, 1.0)  # chunk 0 took a second
    jobs.store.complete_chunk(job.id, 0)
    assert jobs.store.dispatch(job.id, 2) == [2]
    assert [jobs.store.chunk_layout(job.id).span(c) for c in range(5)] == [(0, 4), (4, 4), (8, 8), (16, 8), (24, 8)]
