"""The import contract: each package imports only what its layer allows (read from the source).

docs/architecture.md draws the same table; a test below holds the two together. Every
import counts, lazy ones inside functions and TYPE_CHECKING ones too: a lazy import
still runs, later.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.imports import REPO_ROOT, imported_names

CORE = ("errors", "settings", "jobs", "imaging", "modelmeta", "proto", "samples")
CLIENTS = ("jobstore", "inference", "modelrepo", "objectstore", "resultsink", "podium")
SERVICES = ("gateway", "worker", "web")
TOOLS = ("export", "engine", "cluster", "bench", "train", "evaluate")
ENTRY = ("podium.cli", "podium.__main__", "ops")
DEPLOY = ("docker",)

# component -> (layer, the other components it may import). A component is a top-level
# package, except that the client CLI (podium.cli, podium.__main__) is apart from the
# client library (podium); a dotted name on the right allows that one module only.
LAYERS: dict[str, tuple[int, frozenset[str]]] = {
    "errors": (1, frozenset()),
    "jobs": (1, frozenset({"errors"})),
    "imaging": (1, frozenset({"errors", "jobs"})),
    "modelmeta": (1, frozenset({"errors", "imaging"})),
    "settings": (1, frozenset({"errors", "imaging", "modelmeta"})),
    "proto": (1, frozenset({"errors"})),
    "samples": (1, frozenset()),
    "jobstore": (2, frozenset({"errors", "jobs", "settings"})),
    "inference": (2, frozenset({"errors", "jobs", "imaging", "modelmeta"})),
    "modelrepo": (2, frozenset({"errors", "jobs", "imaging", "modelmeta"})),
    "objectstore": (2, frozenset({"errors", "jobs"})),
    # The results sink writes to object storage through objectstore's client and errors.
    "resultsink": (2, frozenset({"errors", "jobs", "objectstore"})),
    "podium": (2, frozenset({"errors", "jobs", "imaging", "proto", "settings"})),
    "gateway": (3, frozenset({*CORE, "jobstore", "inference", "objectstore", "resultsink"})),
    "worker": (3, frozenset({*CORE, "jobstore", "inference", "objectstore", "resultsink"})),
    "web": (3, frozenset({*CORE, "podium"})),
    "export": (3, frozenset({*CORE, "modelrepo"})),
    "engine": (3, frozenset({*CORE, "modelrepo"})),
    "cluster": (
        3,
        frozenset({*CORE, "jobstore", "modelrepo", "gateway.settings", "worker.settings", "web.settings"}),
    ),
    # The networks it trains are the export's registry's (export.architectures).
    "train": (3, frozenset({*CORE, "export.labels", "export.architectures", "export.errors"})),
    "evaluate": (3, frozenset({*CORE, "podium", "modelrepo"})),
    "bench": (
        3,
        frozenset(
            {
                *CORE,
                "podium",
                "jobstore",
                "resultsink",
                "inference",
                "modelrepo",
                "cluster",
                "export",
                "gateway.settings",
                "worker.settings",
            }
        ),
    ),
    # objectstore: --output s3://…; resultsink: --format parquet writes the sink's columns.
    "podium.cli": (4, frozenset({"errors", "jobs", "proto", "settings", "podium", "objectstore", "resultsink"})),
    "podium.__main__": (4, frozenset({"ops"})),
    # `podium webhook-key` derives a tenant's key as the gateway does.
    "ops": (
        4,
        frozenset(
            {*CORE, *CLIENTS, *TOOLS, "podium.cli", "web", "gateway.access", "gateway.settings", "gateway.webhooks"}
        ),
    ),
    "docker": (4, frozenset({"gateway.settings", "worker.settings", "web.settings", "jobstore"})),
}
# Third-party packages a component must never import (what its image or its users lack).
SERVER_SIDE = frozenset({"redis", "celery", "kombu", "torch", "torchvision", "tritonclient", "onnxruntime"})
FORBIDDEN: dict[str, frozenset[str]] = {
    **{name: frozenset({"redis", "celery", "kombu", "torch", "tritonclient", "grpc"}) for name in CORE},
    "proto": frozenset({"redis", "celery", "kombu", "torch", "tritonclient"}),  # the API is gRPC
    "podium": SERVER_SIDE,
    "podium.cli": SERVER_SIDE,
    "export": frozenset({"redis", "celery", "kombu"}),
    "train": frozenset({"redis", "celery", "kombu", "tritonclient"}),
    "evaluate": frozenset({"redis", "celery", "kombu", "torch", "tritonclient"}),
    "engine": frozenset({"torch", "torchvision", "redis", "celery", "kombu"}),
    "modelrepo": frozenset({"torch", "torchvision", "redis", "celery", "kombu"}),
    "jobstore": frozenset({"torch", "tritonclient", "onnxruntime"}),
    "objectstore": frozenset({"torch", "redis", "celery", "tritonclient", "onnxruntime", "grpc"}),
    "resultsink": frozenset({"torch", "redis", "celery", "tritonclient", "onnxruntime", "grpc"}),
    "inference": frozenset({"torch", "redis", "celery", "onnxruntime"}),
    "gateway": frozenset({"torch", "onnxruntime", "onnx"}),
    "worker": frozenset({"torch", "onnxruntime", "onnx"}),
    "web": SERVER_SIDE,  # the page talks to the gateway only
}
PACKAGES = sorted({name.split(".")[0] for name in LAYERS})
_PROJECT = set(PACKAGES)


def project_modules() -> list[tuple[str, Path]]:
    """(module name, file) of every Python file of the project's packages (tests excluded).

    Below a top-level folder, only files inside packages count: a folder without
    ``__init__.py`` (e.g. ``bench/results/work``, where `make bench` exports Triton models)
    holds data, not code."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            below = [folder for folder in path.parents if (REPO_ROOT / package) in folder.parents]
            if not all((folder / "__init__.py").is_file() for folder in below):
                continue
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def component_of(module: str) -> str | None:
    """The LAYERS entry a module belongs to: the longest matching prefix."""
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in LAYERS:
            return candidate
    return None


def allowed(target: str, permitted: frozenset[str]) -> bool:
    return any(target == name or target.startswith(f"{name}.") for name in permitted)


def violations(modules: list[tuple[str, Path]]) -> list[str]:
    found = []
    for module, path in modules:
        component = component_of(module)
        assert component is not None, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
        _, permitted = LAYERS[component]
        for target, line in imported_names(path, module):
            top = target.split(".")[0]
            where = f"{module}:{line}"
            if top in FORBIDDEN.get(component, ()):
                found.append(f"{where}: {component} imports {top}, which it must never")
            if top not in _PROJECT:
                continue
            other = component_of(target)
            if other in (None, component) or other.startswith(f"{component}."):
                continue
            if not allowed(target, permitted) and not allowed(other, permitted):
                found.append(f"{where}: {component} (layer {LAYERS[component][0]}) may not import {target}")
    return found


def test_every_import_follows_the_layer_table():
    assert violations(project_modules()) == []


def test_every_package_has_a_layer():
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk <= _PROJECT, f"packages without a layer: {sorted(on_disk - _PROJECT)}"


def test_no_layer_imports_a_higher_one():
    for component, (layer, permitted) in LAYERS.items():
        for name in permitted:
            other = component_of(name)
            assert other is not None and LAYERS[other][0] <= layer, f"{component} (layer {layer}) allows {name}"


@pytest.mark.parametrize(
    ("module", "statement", "complaint"),
    [
        ("podium.leak", "import redis", "podium imports redis"),
        ("podium.leak", "from gateway.service import JobService", "may not import gateway.service"),
        ("jobs.leak", "def later():\n    from jobstore import JobStore", "may not import jobstore"),
        ("engine.leak", "import torch", "engine imports torch"),
        ("cluster.leak", "from gateway.server import build_gateway", "may not import gateway.server"),
    ],
)
def test_the_check_catches_a_wrong_arrow(module, statement, complaint, tmp_path):
    fake = tmp_path / "leak.py"
    fake.write_text(f"{statement}\n")
    found = violations([(module, fake)])
    assert found and all(complaint in line for line in found), found


def test_the_scan_sees_the_real_arrows():
    seen = {target for target, _ in imported_names(REPO_ROOT / "gateway" / "model_service.py", "gateway.model_service")}
    assert {"inference", "errors", "gateway"} <= {name.split(".")[0] for name in seen}


def test_the_architecture_document_draws_the_same_table():
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w.]+)` \| (\d) \|", text, flags=re.MULTILINE))
    assert {name: int(layer) for name, layer in rows.items()} == {name: v[0] for name, v in LAYERS.items()}


def test_test_modules_have_unique_basenames():
    """pytest imports test files by basename (rootdir mode): two with one name break collection."""
    seen: dict[str, Path] = {}
    for path in sorted((REPO_ROOT / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path
