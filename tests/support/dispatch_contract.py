"""The JobStore's contract for dispatching chunks: how many stay queued, how chunks grow
from the workers' measured rate, how a job's last images are shared out, and how an upload
held back cuts what arrived into a smaller chunk. Part of StoreContract
(tests/support/store_contract.py), run on fakeredis and real Redis alike.
"""

from __future__ import annotations

from podium.core.jobs import ImageOutcome, JobMode, JobState, Prediction
from podium.stores.jobstore import HeldBack, JobStore
from podium.stores.jobstore.chunk_rates import ChunkRates

OK = ImageOutcome(predictions=(Prediction("archery", 2, 0.75), Prediction("rugby", 70, 0.125)))
BAD = ImageOutcome(error="not a recognised image format")


def new_job(store: JobStore, files: int, chunk_size: int = 4):
    job = store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=chunk_size)
    store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(files)], [b"x"] * files)
    return job


class DispatchContract:
    """Subclasses provide ``store`` and ``redis_client`` fixtures (a fresh, empty database)."""

    def test_dispatch_keeps_a_bounded_number_of_chunks_queued(self, store):
        job = new_job(store, 10, chunk_size=4)
        # While uploading, only full chunks go out.
        assert store.dispatch(job.id, max_queued_chunks=5) == [0, 1]
        store.finish_upload(job.id)
        assert store.dispatch(job.id, max_queued_chunks=2) == []  # two in flight already
        store.complete_chunk(job.id, 0)
        store.complete_chunk(job.id, 0)  # a repeat does not free a second slot
        assert store.dispatch(job.id, max_queued_chunks=2) == [2]  # the partial last chunk
        store.complete_chunk(job.id, 1)
        assert store.dispatch(job.id, max_queued_chunks=2) == []  # nothing left

    def test_chunks_grow_at_the_dispatch_frontier_once_the_workers_measure_a_rate(self, store, redis_client):
        job = _growing_job(store, 60)
        assert store.dispatch(job.id, 1) == [0]  # nothing measured: the first chunks' size
        ChunkRates(redis_client).note("m", 8, 1.0)  # a worker does 8 images a second
        assert store.dispatch(job.id, 3) == [1, 2]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(3)] == [(0, 2), (2, 8), (10, 8)]
        ChunkRates(redis_client).note("m", 1000, 1.0)
        assert store.dispatch(job.id, 3) == [] and store.chunk_layout(job.id) == layout  # none has ended
        assert store.record_many(job.id, [(i, OK, False) for i in range(18)], {}) == [True] * 18
        # Chunk 1's file landed: its 8 records leave Redis, and its done mark refuses a repeat.
        store.complete_chunk(job.id, 1)
        held = [record is not None for _, record in store.recorded(job.id, 0, 18)]
        assert held == [True] * 2 + [False] * 8 + [True] * 8
        assert store.record(job.id, 9, OK) is False
        assert store.chunk_records(job.id, 1, 2, 8).done is True
        assert store.chunk_records(job.id, 2, 10, 8).done is False
        store.complete_chunk(job.id, 0)
        store.complete_chunk(job.id, 2)
        assert store.get(job.id).state is JobState.RUNNING

    def test_a_jobs_last_chunks_share_out_what_is_left(self, store, redis_client):
        """Near the end each chunk takes a share of the images left (in as many parts as chunks
        may be in flight, never fewer images than the first chunks'), so the workers finish
        together; the partial last chunk and the job's completion follow the layout."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_job(store, 42)
        assert store.dispatch(job.id, 4) == [0, 1, 2, 3]
        layout = store.chunk_layout(job.id)
        # 42 left in 4 parts: 11 (8 at most); 34: 9 -> 8; 26: 7; 19: 5.
        assert [layout.span(c) for c in range(4)] == [(0, 8), (8, 8), (16, 7), (23, 5)]
        assert store.record_many(job.id, [(i, OK, False) for i in range(28)], {}) == [True] * 28
        for chunk in range(4):
            store.complete_chunk(job.id, chunk)
        assert store.dispatch(job.id, 4) == [4, 5, 6, 7]
        layout = store.chunk_layout(job.id)
        # 14 left: 4; 10: 3; 7: 2; 5: 2 (the first chunks' size is the fewest).
        assert [layout.span(c) for c in range(4, 8)] == [(28, 4), (32, 3), (35, 2), (37, 2)]
        assert store.record_many(job.id, [(i, OK, False) for i in range(28, 39)], {}) == [True] * 11
        for chunk in range(4, 8):
            store.complete_chunk(job.id, chunk)
        assert store.dispatch(job.id, 4) == [8, 9]
        assert store.chunk_layout(job.id).span(9) == (41, 2)  # the partial last chunk
        assert layout.count(42) == store.chunk_layout(job.id).count(42) == 10
        assert store.record_many(job.id, [(i, OK, False) for i in range(39, 42)], {}) == [True] * 3
        assert store.complete_chunk(job.id, 8) is False
        assert store.complete_chunk(job.id, 9) is True

    def test_an_upload_or_a_job_without_a_growth_bound_keeps_its_chunk_size(self, store, redis_client):
        ChunkRates(redis_client).note("m", 1000, 1.0)
        upload = store.create(mode=JobMode.UPLOAD, chunk_size=2, model_name="m")
        store.append_files(upload.id, 0, [f"img{i}.jpg" for i in range(6)], [b"x"] * 6)
        store.finish_upload(upload.id)
        assert store.dispatch(upload.id, 5) == [0, 1, 2]
        assert store.chunk_layout(upload.id).span(2) == (4, 2)

    def test_an_upload_held_back_sends_the_files_that_arrived_as_a_smaller_chunk(self, store, redis_client):
        """Held back with none of its chunks in flight, an upload sends what arrived as one
        smaller chunk; the chunks after it take a quarter of that many, and grow no more."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 300)
        assert store.dispatch(job.id, 5) == [0]  # grown to 256: only whole chunks, unless held back
        assert store.dispatch(job.id, 5, partial=True) == []  # chunk 0 in flight will make room
        _process(store, job.id, 0)
        assert store.dispatch(job.id, 5, partial=True) == [1]  # the 44 files that arrived
        assert store.dispatch(job.id, 5, partial=True) == []  # nothing more arrived
        store.append_files(job.id, 300, [f"img{i}.jpg" for i in range(300, 323)], [b"x"] * 23)
        assert store.dispatch(job.id, 5) == [2, 3]  # 11 each (a quarter of 44), whatever the rate
        store.finish_upload(job.id)
        assert store.dispatch(job.id, 5) == [4]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(5)] == [(0, 256), (256, 44), (300, 11), (311, 11), (322, 11)]
        assert [layout.chunk_of(i) for i in (255, 256, 299, 300, 311, 322)] == [0, 1, 1, 2, 3, 4]
        assert layout.count(323) == 5
        for chunk in range(1, 5):
            _process(store, job.id, chunk)
        assert store.get(job.id).state is JobState.COMPLETED

    def test_an_upload_held_back_again_and_again_keeps_its_layout_short(self, store, redis_client):
        """Each cut sizes the chunks after it to what fits, so a long upload that is held back
        all along adds a few segments to its layout, not two per chunk."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 0)
        sent = 0

        def pump_and_process(partial: bool) -> None:  # workers that are never behind
            nonlocal sent
            while chunks := store.dispatch(job.id, 5, partial):
                for chunk in chunks:
                    _process(store, job.id, chunk)
                sent += len(chunks)

        for cycle in range(50):  # 7 files arrive each time the upload is held back
            store.append_files(job.id, cycle * 7, [f"img{i}.jpg" for i in range(cycle * 7, cycle * 7 + 7)], [b"x"] * 7)
            pump_and_process(True)
        store.finish_upload(job.id)
        pump_and_process(False)
        assert store.get(job.id).state is JobState.COMPLETED
        layout = store.chunk_layout(job.id)
        assert len(layout.segments) <= 4  # the first size, the cut, the quarter after it
        assert sent == layout.count(350)

    def test_an_upload_held_by_redis_memory_keeps_at_least_half_its_chunk_size(self, store, redis_client):
        """Held by Redis's memory, what arrived says little of an upload's room: the two files
        that a passing high-water mark found go out as a chunk, and the chunks after it keep
        half their size, not a quarter of two (one image a chunk to the job's end)."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 258)
        assert store.dispatch(job.id, 5) == [0]  # grown to 256
        _process(store, job.id, 0)
        assert store.dispatch(job.id, 5, HeldBack.BY_REDIS_MEMORY) == [1]  # the 2 files that arrived
        store.append_files(job.id, 258, [f"img{i}.jpg" for i in range(258, 558)], [b"x"] * 300)
        assert store.dispatch(job.id, 5) == [2, 3]  # 128 each, whatever the rate; 44 wait
        store.finish_upload(job.id)
        assert store.dispatch(job.id, 5) == [4]
        layout = store.chunk_layout(job.id)
        assert [layout.span(c) for c in range(5)] == [(0, 256), (256, 2), (258, 128), (386, 128), (514, 128)]
        for chunk in range(1, 5):
            _process(store, job.id, chunk)
        assert store.get(job.id).state is JobState.COMPLETED

    def test_an_upload_held_by_redis_memory_again_and_again_keeps_its_layout_short(self, store, redis_client):
        """Holds that persist halve the chunks each time, down to what arrives between them:
        two segments a halving, not two per chunk."""
        ChunkRates(redis_client).note("m", 1000, 1.0)
        job = _growing_upload(store, 0)
        sent = 0
        for cycle in range(50):  # 7 files arrive each time the upload is held back
            store.append_files(job.id, cycle * 7, [f"img{i}.jpg" for i in range(cycle * 7, cycle * 7 + 7)], [b"x"] * 7)
            while chunks := store.dispatch(job.id, 5, HeldBack.BY_REDIS_MEMORY):
                for chunk in chunks:
                    _process(store, job.id, chunk)
                sent += len(chunks)
        store.finish_upload(job.id)
        while chunks := store.dispatch(job.id, 5):
            for chunk in chunks:
                _process(store, job.id, chunk)
            sent += len(chunks)
        assert store.get(job.id).state is JobState.COMPLETED
        layout = store.chunk_layout(job.id)
        assert len(layout.segments) <= 2 + 2 * 8  # the first sizes, then a cut and a size per halving of 256
        assert sent == layout.count(350)


def _growing_upload(store, files: int):
    """An upload of ``files`` files so far whose chunks start at 64 images and may grow to 256."""
    job = store.create(mode=JobMode.UPLOAD, chunk_size=64, max_chunk_size=256, chunk_seconds=1.0, model_name="m")
    if files:
        store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(files)], [b"x"] * files)
    return job


def _process(store, job_id: str, chunk: int) -> None:
    """A worker's run of ``chunk``: each of its images recorded, then the chunk counted done."""
    first, size = store.chunk_layout(job_id).span(chunk)
    count = min(size, store.get(job_id).total - first)
    assert store.record_many(job_id, [(i, OK, False) for i in range(first, first + count)], {}) == [True] * count
    store.complete_chunk(job_id, chunk)


def _growing_job(store, images: int):
    """A path job of ``images`` files whose chunks start at 2 images and may grow to 8."""
    job = store.create(
        mode=JobMode.PATH, chunk_size=2, max_chunk_size=8, chunk_seconds=1.0, model_name="m",
        results_url="file:///srv/results",
    )  # fmt: skip
    store.append_files(job.id, 0, [f"img{i}.jpg" for i in range(images)])
    store.finish_upload(job.id)
    return job
