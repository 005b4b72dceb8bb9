"""The JobStore's contract for an upload's large files: one too large for one Redis command
goes in pieces (``LARGE_BLOB_BYTES``), reads back whole, counts as pending until a worker
records it, and leaves no key behind however its job ends. Part of StoreContract
(tests/support/store_contract.py), run on fakeredis and real Redis alike.
"""

from __future__ import annotations

import secrets

import pytest

from podium.core.jobs import JobMode
from podium.stores.jobstore import JobStore
from podium.stores.jobstore.schema import JobKeys
from podium.stores.jobstore.upload_files import LARGE_BLOB_BYTES
from tests.support.dispatch_contract import OK

LARGE = 2 * LARGE_BLOB_BYTES + 12345  # three pieces, the last one short


def _upload(store: JobStore):
    return store.create(mode=JobMode.UPLOAD, top_k=2, chunk_size=4)


class UploadContract:
    """Subclasses provide ``store`` and ``redis_client`` fixtures (a fresh, empty database)."""

    def test_a_large_file_reads_back_whole_beside_small_ones(self, store):
        job = _upload(store)
        large, edge = secrets.token_bytes(LARGE), secrets.token_bytes(LARGE_BLOB_BYTES)
        assert store.append_files(job.id, 0, ["a.jpg", "large.jpg", "b.jpg", "edge.jpg"], [b"a", large, b"", edge])
        assert store.blobs(job.id, [0, 1, 2, 3]) == [b"a", large, b"", edge]
        assert store.blob(job.id, 1) == large
        assert store.pending_uploads(job.id) == (4, 1 + LARGE + LARGE_BLOB_BYTES)
        assert [path for path, _ in store.results(job.id, 0, 4)] == ["a.jpg", "large.jpg", "b.jpg", "edge.jpg"]

    def test_a_recorded_large_file_leaves_redis(self, store):
        job = _upload(store)
        store.append_files(job.id, 0, ["a.jpg", "large.jpg"], [b"a", secrets.token_bytes(LARGE)])
        store.record(job.id, 1, OK)
        assert store.pending_uploads(job.id) == (1, 1)
        assert store.blob(job.id, 1) is None
        assert not [key for key in store.job_keys(job.id) if key.startswith(JobKeys(job.id).large_blobs)]

    @pytest.mark.parametrize("end", ["cancel", "fail", "delete"])
    def test_however_a_job_ends_its_large_files_go_with_it(self, store, end):
        job = _upload(store)
        store.append_files(job.id, 0, ["large.jpg"], [secrets.token_bytes(LARGE)])
        getattr(store, end)(*([job.id, "stopped"] if end == "fail" else [job.id]))
        assert store.blob(job.id, 0) is None
        assert not [key for key in store.job_keys(job.id) if key.startswith(JobKeys(job.id).large_blobs)]

    def test_a_job_that_stopped_uploading_takes_no_large_file(self, store):
        job = _upload(store)
        store.cancel(job.id)
        assert not store.append_files(job.id, 0, ["large.jpg"], [secrets.token_bytes(LARGE)])
        assert not [key for key in store.job_keys(job.id) if key.startswith(JobKeys(job.id).large_blobs)]

    def test_a_large_file_sent_again_after_a_broken_upload_is_written_afresh(self, store):
        """A gateway that died inside a large file left pieces of it; the resumed upload
        sends the file again at the same index, shorter this time: no old byte survives."""
        job = _upload(store)
        keys = JobKeys(job.id).all
        store._stage(keys, 0, secrets.token_bytes(LARGE + LARGE_BLOB_BYTES))  # never appended
        again = secrets.token_bytes(LARGE)
        assert store.append_files(job.id, 0, ["large.jpg"], [again])
        assert store.blob(job.id, 0) == again
        assert store.pending_uploads(job.id) == (1, LARGE)

    def test_no_command_carries_more_than_a_piece_of_a_large_file(self, store, redis_client, monkeypatch):
        sent: list[int] = []
        execute = redis_client.execute_command

        def measured(*args, **options):
            sent.append(sum(len(arg) for arg in args if isinstance(arg, bytes | memoryview)))
            return execute(*args, **options)

        monkeypatch.setattr(redis_client, "execute_command", measured)
        job = _upload(store)
        store.append_files(job.id, 0, ["large.jpg"], [secrets.token_bytes(4 * LARGE)])
        assert store.blob(job.id, 0) is not None
        assert sent and max(sent) <= LARGE_BLOB_BYTES
