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
        if name.startswith(("export", "podium.engine", "podium.stores.modelrepo"))
        and not name.endswith("triton_python_model")
    ]
    assert len(modules) > 20
    assert {"redis", "celery", "kombu"} & loaded_by(modules) == set()


def test_the_engine_builder_loads_no_torch():
    modules = [name for name, _ in project_modules() if name.startswith(("podium.engine", "podium.stores.modelrepo"))]
    modules = [name for name in modules if not name.endswith("triton_python_model")] + ["podium.cli.main"]
    assert {"torch", "torchvision"} & loaded_by(modules) == set()


def test_python_m_podium_help_loads_none_of_the_services():
    code = (
        "import json, runpy, sys\n"
        "sys.argv = ['podium', '--help']\n"
        "try:\n    runpy.run_module('podium', run_name='__main__')\n"
        "except SystemExit as done:\n    assert done.code == 0, done.code\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "Usage: podium" in done.stdout and "submit" in done.stdout
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    services = ("gateway", "worker", "export", "podium.web", "podium.cluster", "podium.stores", "podium.engine")
    assert [name for name in loaded if name.split(".")[0] in SERVER_SIDE or name.startswith(services)] == []
