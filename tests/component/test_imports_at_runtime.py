"""What an import really loads, in a fresh interpreter: the layer test reads the source, this
runs it (a dependency of a dependency would show here only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.unit.test_layers import project_modules

SERVER_SIDE = ("redis", "celery", "kombu", "torch", "tritonclient")


def loaded_by(modules: list[str]) -> set[str]:
    code = "import importlib, json, sys\n"
    code += "".join(f"importlib.import_module({name!r})\n" for name in modules)
    code += "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", ["podium", "podium.client", "podium.cli"])
def test_the_client_loads_nothing_of_the_server_side(module):
    assert loaded_by([module]) & set(SERVER_SIDE) == set()


def test_the_export_packages_load_no_redis():
    modules = [
        name
        for name, _ in project_modules()
        if name.split(".")[0] in ("export", "engine", "modelrepo") and not name.endswith("triton_python_model")
    ]
    assert len(modules) > 20
    assert {"redis", "celery", "kombu"} & loaded_by(modules) == set()


def test_the_engine_builder_loads_no_torch():
    modules = [name for name, _ in project_modules() if name.split(".")[0] in ("engine", "modelrepo")]
    modules = [name for name in modules if not name.endswith("triton_python_model")] + ["ops.main"]
    assert {"torch", "torchvision"} & loaded_by(modules) == set()
