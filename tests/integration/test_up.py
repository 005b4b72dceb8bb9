"""`podium up` as a user runs it: starts everything, serves a job, stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from podium import PodiumClient, Unauthenticated
from podium.cluster.processes import free_port
from podium.core.proto import podium_pb2 as pb

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


API_KEY = "up-test-key"


def start_web_alone(gateway: str, port: str | None) -> str:
    """Run `podium web` until its page answers (asking to log in), stop it; its URL."""
    argv = [sys.executable, "-m", "podium", "web", "--gateway", gateway, *(["--port", port] if port else [])]
    env = {name: value for name, value in os.environ.items() if name != "PODIUM_WEB_PORT"}
    alone = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = alone.stdout.readline()
        assert line.startswith("web: http://"), line
        url = line.split()[1]
        assert 'data-testid="api-key-input"' in wait_for_page(f"{url}/jobs")
    finally:
        alone.terminate()
        assert alone.wait(30) == 0
    return url


def wait_for_page(url: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.2)


def test_up_serves_and_stops_without_orphans(model_repository, test_folder, tmp_path):
    """Also: PODIUM_API_KEYS in the environment protects the gateway `podium up` starts."""
    port, web_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "podium",
            "up",
            "--model-repository",
            str(model_repository),
            "--workers",
            "1",
            "--gateway-port",
            str(port),
            "--run-dir",
            str(tmp_path / "run"),
            "--web-port",
            str(web_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PODIUM_API_KEYS": API_KEY},
    )
    try:
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any(f"127.0.0.1:{port}" in line for line in lines), "".join(lines)
        metrics = {line.split()[1]: line.split()[2] for line in lines if "metrics" in line and "http://" in line}
        assert set(metrics) == {"triton", "gateway", "worker-1"}, "".join(lines)
        children = descendants(proc.pid)
        assert len(children) >= 5  # redis, triton, a worker (and its pool), the gateway, the web page
        web = f"http://127.0.0.1:{web_port}"
        assert any(line.strip() == f"web: {web}" for line in lines), "".join(lines)
        with urllib.request.urlopen(f"{web}/jobs", timeout=10) as page:  # keys: the page asks to log in
            assert page.url.startswith(f"{web}/login") and 'data-testid="api-key-input"' in page.read().decode()
        # `podium web` on its own, beside it, in front of the same gateway: on the port asked
        # for, and without one while the default (8080) is taken, on a free port it names.
        held = socket.socket()
        with contextlib.suppress(OSError):  # taken already: as good for the test
            held.bind(("127.0.0.1", 8080))
            held.listen()
        try:
            for asked in (str(free_port()), None):
                url = start_web_alone(f"127.0.0.1:{port}", asked)
                assert url != "http://127.0.0.1:8080" and (asked is None or url.endswith(f":{asked}"))
        finally:
            held.close()

        with PodiumClient(f"127.0.0.1:{port}") as keyless, pytest.raises(Unauthenticated):
            keyless.submit_folder(test_folder.root)
        with PodiumClient(f"127.0.0.1:{port}", api_key=API_KEY) as client:
            job = client.submit_folder(test_folder.root)
            for update in client.watch(job.id):
                job = update
        assert job.state == pb.JOB_STATE_COMPLETED
        assert job.succeeded == len(test_folder.valid)
        with urllib.request.urlopen(metrics["worker-1"], timeout=10) as response:
            page = response.read().decode()
        processed = [line for line in page.splitlines() if line.startswith("podium_images_processed_total{")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in processed) == job.total, page

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        leftover = [pid for pid in children if alive(pid)]
        assert leftover == [], f"orphans left behind: {leftover}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
