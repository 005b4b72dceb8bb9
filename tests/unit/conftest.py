"""The unit tier starts no process: no redis-server, no tritonserver, no Celery, no CLI.

Anything that would spawn one fails here at once, with the test's name, so a test that
needs a real part is moved to tests/component or tests/integration instead of quietly
slowing this tier down. Fakes (fakeredis, a fake Triton, a fake TensorRT) stand in.
"""

from __future__ import annotations

import subprocess

import pytest


class ProcessStarted(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_processes(monkeypatch, request):
    def refuse(*args, **kwargs):
        raise ProcessStarted(
            f"{request.node.nodeid} starts a process ({args[0] if args else kwargs}); unit tests may not"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
