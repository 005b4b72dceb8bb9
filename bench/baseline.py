"""The one-request-per-image baseline: a client that posts each image and waits for its answer."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from export.served import ServedModel

STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0
LABELS_FILENAME = "labels.txt"


@contextmanager
def single_image_service(model: ServedModel) -> Iterator[int]:
    """Run bench.single_image_server in a subprocess; yield its port; always stop it."""
    labels = model.repository / model.model_name / LABELS_FILENAME
    command = [
        sys.executable,
        "-m",
        "bench.single_image_server",
        str(model.onnx_path),
        str(labels),
        "--threads",
        str(model.intra_op_threads),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield _read_port(process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_port(process: subprocess.Popen) -> int:
    assert process.stdout is not None
    # The server prints one line once its model is loaded; readline blocks until then,
    # and returns "" if the server died first.
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        raise RuntimeError(f"the single-image service did not start (exit code {process.poll()}): {line!r}")
    return int(line.split()[-1])


def classify_one_by_one(port: int, images: Sequence[bytes]) -> float:
    """Send every image in turn, each waiting for its answer; returns images/s."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        started = time.perf_counter()
        for data in images:
            connection.request("POST", "/classify", body=data, headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"single-image service answered {response.status}: {json.loads(body)}")
        return len(images) / (time.perf_counter() - started)
    finally:
        connection.close()


def read_images(files: Sequence[Path]) -> list[bytes]:
    return [path.read_bytes() for path in files]
