"""The web page on a fake gateway, in process (FastAPI's TestClient): the fake gateway and the
helpers of tests/unit/web (whose conftest.py makes the fixtures)."""

from __future__ import annotations

import io
import json
import re
import time

from PIL import Image

from podium.core.errors import FailedPrecondition, NotFound, Unauthenticated
from podium.core.proto import podium_pb2 as pb

KEY = "the-key"
JOB_ID = "0123456789abcdef0123456789abcdef"


def jpeg(size=(300, 200), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def result(index: int, path: str, label: str = "", p: float = 0.0, error: str = "", cam: bool = False):
    if error:
        return pb.ImageResult(index=index, path=path, status=pb.IMAGE_STATUS_ERROR, error=error)
    top = [pb.Prediction(label=label, index=index % 3, probability=p), pb.Prediction(label="other", probability=1 - p)]
    made = pb.ImageResult(index=index, path=path, status=pb.IMAGE_STATUS_OK, top_k=top)
    if cam:
        made.cam.CopyFrom(pb.ClassActivationMap(class_index=0, rows=2, cols=2, values=[0, 1 / 255, 0.5, 1]))
    return made


class FakeSubscription:
    def __init__(self, jobs):
        self._jobs = jobs
        self.cancelled = False

    def __iter__(self):
        yield from self._jobs

    def cancel(self):
        self.cancelled = True


class FakeClient:
    """The part of PodiumClient the page calls, over a job held in memory."""

    def __init__(self, gateway: FakeGateway, key: str):
        self.gateway, self.key = gateway, key

    def _check(self):
        if self.gateway.keys and self.key not in self.gateway.keys:
            raise Unauthenticated("unknown API key")

    def classes(self, model: str = ""):
        self._check()
        resize, crop = (320, 300) if model == "effnet_b3" else (256, 224)
        return pb.ListClassesResponse(
            classes=["a", "b", "c"], model_name=model or "m", model_version="1", target="cpu", precision="fp32",
            resize=resize, crop=crop,
        )  # fmt: skip

    def list_jobs(self, state=0, name="", page_size=100):
        self._check()
        yield from [job for job in self.gateway.jobs.values() if not state or job.state == state]

    def get_job(self, job_id):
        self._check()
        if job_id not in self.gateway.jobs:
            raise NotFound(f"no job {job_id}")
        return self.gateway.jobs[job_id]

    def results(self, job_id, start_index=0, follow=False):
        self._check()
        self.gateway.result_reads += 1
        return iter(self.gateway.results.get(job_id, []))

    def result_batches(self, job_id, start_index=0):
        """The job's rows in bulk, as the gateway reads them from its result files."""
        self._check()
        if self.gateway.jobs[job_id].state != pb.JOB_STATE_COMPLETED:
            raise FailedPrecondition(f"job {job_id} is not completed: its answers are not all in result files")
        from podium.cli.parquet import _recorded
        from podium.stores.resultsink.rows import ResultRow, rows_table

        rows = [ResultRow(r.index, r.path, _recorded(r)) for r in self.gateway.results.get(job_id, [])]
        return iter(rows_table(rows, "m:1").to_batches(max_chunksize=1)) if rows else iter([])

    def subscribe(self, job_id):
        self._check()
        self.gateway.subscription = FakeSubscription(self.gateway.updates)
        return self.gateway.subscription

    def cancel(self, job_id):
        self._check()
        self.gateway.cancelled.append(job_id)
        return self.gateway.jobs[job_id]

    def delete(self, job_id):
        self._check()
        self.gateway.jobs.pop(job_id)

    def submit_chunks(self, chunks, options):
        self._check()
        gathered: dict[str, bytearray] = {}
        for chunk in chunks:
            gathered.setdefault(chunk.path, bytearray()).extend(chunk.data)
        files = {path: bytes(data) for path, data in gathered.items()}
        del gathered
        self.gateway.uploaded, self.gateway.spec = files, options
        if self.gateway.refuse:
            raise self.gateway.refuse
        job = pb.Job(id=JOB_ID, state=pb.JOB_STATE_RUNNING, total=len(files), created_at=time.time())
        self.gateway.jobs[JOB_ID] = job
        return job

    def classify_images(self, images, top_k=0, model="", explain=False):
        self._check()
        return [result(0, images[0][0], "a", 0.9)]

    def serving(self):
        return True

    def status(self):
        self._check()
        return pb.GetStatusResponse(redis_ok=True, model_ok=True, model="m:1", workers=[pb.WorkerStatus(name="w1")])


class FakeGateway:
    def __init__(self, keys=(KEY,)):
        self.keys = set(keys)
        self.jobs: dict[str, pb.Job] = {}
        self.results: dict[str, list[pb.ImageResult]] = {}
        self.updates: list[pb.Job] = []
        self.cancelled: list[str] = []
        self.uploaded: dict[str, bytes] = {}
        self.spec: dict = {}
        self.refuse = None
        self.result_reads = 0
        self.subscription = None

    address = "127.0.0.1:1"

    def client(self, key: str) -> FakeClient:
        return FakeClient(self, key)

    def close(self):
        pass


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf-token" content="([0-9a-f]+)"', page).group(1)


def logged_in(web) -> str:
    """Log in with the right key; returns the session's CSRF token."""
    token = csrf_of(web.get("/login").text)
    answer = web.post("/login", data={"api_key": KEY, "csrf_token": token, "next": "/jobs"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
    return csrf_of(web.get("/jobs").text)


def finished_job(gateway, results, explain=False) -> pb.Job:
    job = pb.Job(
        id=JOB_ID,
        state=pb.JOB_STATE_COMPLETED,
        total=len(results),
        succeeded=sum(r.status == pb.IMAGE_STATUS_OK for r in results),
        failed=sum(r.status == pb.IMAGE_STATUS_ERROR for r in results),
        created_at=100.0,
        finished_at=110.0,
        spec=pb.JobSpec(name="n", explain=explain, top_k=2),
    )
    gateway.jobs[JOB_ID], gateway.results[JOB_ID] = job, results
    return job


def framed(files: dict[str, bytes]) -> bytes:
    return b"".join(json.dumps({"path": p, "size": len(d)}).encode() + b"\n" + d for p, d in files.items())
