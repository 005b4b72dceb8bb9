"""The embedded Triton: the real ``tritonserver`` binary that the nvidia-pytriton wheel carries.

It runs on the CPU with the Python backend. The backend needs the stub built for this
interpreter beside it, and the stub needs numpy < 2 in the environment it finds first
on PATH (this virtual environment), or it answers with empty outputs.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from pathlib import Path

from podium.core.allocator import malloc_environment
from podium.core.errors import FailedPrecondition


class TritonNotInstalled(FailedPrecondition):
    """The embedded Triton (the nvidia-pytriton wheel) or its Python-backend stub is missing."""


def pytriton_root() -> Path:
    try:
        import pytriton
    except ImportError as exc:
        raise TritonNotInstalled(
            "the embedded Triton comes with the nvidia-pytriton package: run `make setup`"
        ) from exc
    return Path(pytriton.__file__).resolve().parent


def tritonserver_binary() -> Path:
    return pytriton_root() / "tritonserver" / "bin" / "tritonserver"


def library_path() -> Path:
    return pytriton_root().parent / "nvidia_pytriton.libs"


def prepare_backends(dest: Path) -> Path:
    """A backend directory holding the Python backend and this interpreter's stub."""
    source = pytriton_root() / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise TritonNotInstalled(f"the embedded Triton has no Python backend stub for Python {version}")
    python_dir = dest / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    files = {item.name: item for item in (source / "backends" / "python").iterdir() if item.is_file()}
    files["triton_python_backend_stub"] = stub
    for name, item in files.items():
        # Copy, then rename over: a running Triton may still execute the old file.
        staged = python_dir / f".{name}.new"
        shutil.copy2(item, staged)
        os.replace(staged, python_dir / name)
    return dest


def tritonserver_argv(
    model_repository: Path, backends: Path, grpc_port: int, http_port: int, metrics_port: int
) -> list[str]:
    return [
        str(tritonserver_binary()),
        f"--model-repository={model_repository}",
        f"--backend-directory={backends}",
        f"--grpc-port={grpc_port}",
        f"--http-port={http_port}",
        f"--metrics-port={metrics_port}",
        "--http-address=127.0.0.1",
        "--grpc-address=127.0.0.1",
        "--allow-metrics=true",
        "--exit-on-error=true",
        "--log-verbose=0",
    ]


def tritonserver_env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        "LD_LIBRARY_PATH": ":".join(p for p in (str(library_path()), os.environ.get("LD_LIBRARY_PATH", "")) if p),
        # The stub takes the first python3 on PATH as its interpreter: this environment's.
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        # The stub allocates each batch's input and outputs (podium.core.allocator).
        **malloc_environment(),
    }


def triton_ready(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def inference_counts(metrics_port: int) -> tuple[float, float]:
    """Triton's ``nv_inference_count`` and ``nv_inference_exec_count``, summed over models:
    their differences over a window give the mean batch Triton formed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals = {"nv_inference_count": 0.0, "nv_inference_exec_count": 0.0}
    for line in text.splitlines():
        name = line.split("{")[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["nv_inference_count"], totals["nv_inference_exec_count"]
