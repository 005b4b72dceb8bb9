"""The unit tier starts no process: no redis-server, no tritonserver, no Celery, no CLI.

Anything that would spawn one fails here at once, with the test's name, so a test that
needs a real part is moved to tests/component or tests/integration instead of quietly
slowing this tier down. Fakes (fakeredis, a fake Triton, a fake TensorRT) stand in. The
one exception is the system's library probes that imports run themselves (ctypes'
``find_library`` asks ``ldconfig -p`` when torch loads).
"""

from __future__ import annotations

import os
import subprocess

import pytest

# Libraries probing the machine at import (ctypes.util: ldconfig, gcc...; numpy.testing: lscpu;
# matplotlib: fc-list, once, while it builds its font cache on a fresh machine).
LIBRARY_PROBES = frozenset({"ldconfig", "gcc", "cc", "ld", "objdump", "lscpu", "fc-list"})


class ProcessStarted(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_processes(monkeypatch, request):
    real_init = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        program = os.path.basename(os.fsdecode(argv[0]).split()[0]) if argv else ""
        if program in LIBRARY_PROBES:
            return real_init(self, args, *rest, **kwargs)
        self._child_created, self.returncode = False, 0  # so that Popen.__del__ stays quiet
        raise ProcessStarted(f"{request.node.nodeid} starts a process ({program}); unit tests may not")

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
