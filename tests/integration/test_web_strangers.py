"""The web page against strangers and big files, over real HTTP to a real `podium up` web
process: a 200 MB file streams through in bounded memory, and a stranger's 100 logins with
random keys during a user's 200-file upload leave that upload whole."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium import PodiumClient
from podium.cluster import ClusterSettings, LocalCluster
from podium.samples import write_photo_folder
from tests.integration.conftest import MODEL_NAME

pytestmark = pytest.mark.integration

API_KEY = "strangers-test-key"
BIG_FILE_BYTES = 200 * 1024**2
RSS_ROOM_BYTES = 64 * 1024**2
UPLOAD_FILES = 200


@pytest.fixture(scope="module")
def web_cluster(model_repository, tmp_path_factory):
    settings = ClusterSettings(
        model_repository=model_repository,
        workers=2,
        gateway_port=0,
        web_port=0,
        run_dir=tmp_path_factory.mktemp("strangers"),
        # The gateway takes the 200 MB file, so that it streams through the page whole.
        service={"model_name": MODEL_NAME, "api_keys": API_KEY, "result_cache": False, "max_file_bytes": 2**28},
    )
    with LocalCluster(settings) as cluster:
        yield cluster


def signed_in(base: str, key: str = API_KEY) -> tuple[httpx.Client, str]:
    """A browser-like client logged in with ``key``, and its CSRF token."""
    client = httpx.Client(base_url=base, timeout=600)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"api_key": key, "csrf_token": token, "next": "/"})
    assert answer.status_code in (200, 303), answer.text[:300]
    home = client.get("/")
    assert home.status_code == 200 and "api-key-input" not in home.text, "not logged in"
    return client, re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)


def framed(files: list[tuple[str, int, bytes]]) -> Iterator[bytes]:
    """The page's upload body: a header line per file, then its bytes (``size`` of ``fill``)."""
    for path, size, fill in files:
        yield (json.dumps({"path": path, "size": size}) + "\n").encode()
        while size:
            piece = fill[: min(size, len(fill))]
            size -= len(piece)
            yield piece


def upload(client: httpx.Client, token: str, files: list[tuple[str, int, bytes]]) -> dict:
    answer = client.post("/api/uploads", content=framed(files), headers={"X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


def memory(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}


def test_a_200_mb_file_streams_through_the_page_in_bounded_memory(web_cluster):
    pid = web_cluster.process("web").pid
    client, token = signed_in(web_cluster.web_url)
    upload(client, token, [("warm-up.bin", 4 * 1024**2, secrets.token_bytes(1024 * 1024))])  # imports, pools
    idle = memory(pid)["VmRSS"]
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    job = upload(client, token, [("big.bin", BIG_FILE_BYTES, secrets.token_bytes(1024 * 1024))])
    peak = memory(pid)["VmHWM"]
    print(f"\nweb process: idle {idle / 2**20:.0f} MiB, peak through a 200 MB file {peak / 2**20:.0f} MiB")
    assert peak - idle <= RSS_ROOM_BYTES, f"the web process grew by {(peak - idle) / 2**20:.0f} MiB"
    with PodiumClient(web_cluster.gateway_address, api_key=API_KEY) as api:
        for update in api.watch(job["job_id"]):
            done = update
        assert done.total == 1 and done.failed == 1  # 200 MB of noise reached the worker, which said so
        (result,) = list(api.results(done.id))
        assert "not a recognised image format" in result.error


def test_a_strangers_logins_during_an_upload_leave_it_whole(web_cluster, tmp_path):
    folder = tmp_path / "photos"
    files = sorted(write_photo_folder(folder, UPLOAD_FILES))
    assert len(files) == UPLOAD_FILES
    client, token = signed_in(web_cluster.web_url)
    started, answer = threading.Event(), {}

    def slow_body() -> Iterator[bytes]:
        for number, path in enumerate(files):
            data = path.read_bytes()
            yield (json.dumps({"path": path.relative_to(folder).as_posix(), "size": len(data)}) + "\n").encode()
            yield data
            if number == 10:
                started.set()
            time.sleep(0.02)  # the upload lasts while the logins come

    def run() -> None:
        response = client.post("/api/uploads", content=slow_body(), headers={"X-CSRF-Token": token})
        answer["status"], answer["body"] = response.status_code, response.text

    uploader = threading.Thread(target=run)
    uploader.start()
    assert started.wait(60), "the upload did not start"
    refused = 0
    for _ in range(100):
        with httpx.Client(base_url=web_cluster.web_url, timeout=30) as stranger:
            page = stranger.get("/login")
            token_field = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            tried = stranger.post("/login", data={"api_key": secrets.token_hex(16), "csrf_token": token_field})
            # Refused: the form again with its error (200), or the throttle (429); never signed in.
            refused += tried.status_code == 429 or (tried.status_code == 200 and "api-key-input" in tried.text)
    uploader.join(600)
    assert not uploader.is_alive() and answer.get("status") == 200, answer
    assert refused == 100, "a random key was let in"
    job_id = json.loads(answer["body"])["job_id"]
    with PodiumClient(web_cluster.gateway_address, api_key=API_KEY) as api:
        for update in api.watch(job_id):
            done = update
    assert (done.total, done.succeeded, done.failed) == (UPLOAD_FILES, UPLOAD_FILES, 0)
