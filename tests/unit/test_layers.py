"""The import contract: each package imports only what its layer allows (read from the source).

The allow-lists are docs/architecture.md's table, read here: one source. Every
import counts, lazy ones inside functions and TYPE_CHECKING ones too: a lazy import
still runs, later.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.imports import REPO_ROOT, imported_names

ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
# Top-level folders of code: the package and the services the design names; bench/ (in the
# repository, not the wheel); deploy/docker holds scripts, not a package.
ROOTS = ("podium", "gateway", "worker", "export", "bench", "deploy/docker")


def read_layer_table(text: str) -> dict[str, tuple[int, frozenset[str]]]:
    """component -> (layer, what it may import), from docs/architecture.md's table.

    A component is a package or module path; "layer 1" in a row means every layer-1 row;
    a dotted name allows that module (or package) and what is inside it."""
    rows = re.findall(r"^\| `([\w.]+)` \| (\d) \| [^|]* \| ([^|]*) \|$", text, flags=re.MULTILINE)
    assert rows, "docs/architecture.md has no layer table"
    core = frozenset(name for name, layer, _ in rows if layer == "1")
    table = {}
    for name, layer, allowed_text in rows:
        names = set(re.findall(r"`([\w.]+)`", allowed_text))
        if "layer 1" in allowed_text:
            names |= core
        table[name] = (int(layer), frozenset(names))
    return table


LAYERS = read_layer_table(ARCHITECTURE.read_text(encoding="utf-8"))
CORE = tuple(name for name, (layer, _) in LAYERS.items() if layer == 1)
# Third-party packages a component must never import (what its image or its users lack).
SERVER_SIDE = frozenset({"redis", "celery", "kombu", "torch", "torchvision", "tritonclient", "onnxruntime"})
FORBIDDEN: dict[str, frozenset[str]] = {
    **{name: frozenset({"redis", "celery", "kombu", "torch", "tritonclient", "grpc"}) for name in CORE},
    "podium.core.proto": frozenset({"redis", "celery", "kombu", "torch", "tritonclient"}),  # the API is gRPC
    "podium": SERVER_SIDE,
    "podium.client": SERVER_SIDE,
    "podium.cli": SERVER_SIDE,
    "export": frozenset({"redis", "celery", "kombu"}),
    "podium.train": frozenset({"redis", "celery", "kombu", "tritonclient"}),
    "podium.evaluate": frozenset({"redis", "celery", "kombu", "torch", "tritonclient"}),
    "podium.engine": frozenset({"torch", "torchvision", "redis", "celery", "kombu"}),
    "podium.stores.modelrepo": frozenset({"torch", "torchvision", "redis", "celery", "kombu"}),
    "podium.stores.jobstore": frozenset({"torch", "tritonclient", "onnxruntime"}),
    "podium.stores.objectstore": frozenset({"torch", "redis", "celery", "tritonclient", "onnxruntime", "grpc"}),
    "podium.stores.resultsink": frozenset({"torch", "redis", "celery", "tritonclient", "onnxruntime", "grpc"}),
    "podium.stores.inference": frozenset({"torch", "redis", "celery", "onnxruntime"}),
    "gateway": frozenset({"torch", "onnxruntime", "onnx"}),
    "worker": frozenset({"torch", "onnxruntime", "onnx"}),
    "podium.web": SERVER_SIDE,  # the page talks to the gateway only
}
_PROJECT = {root.split("/")[0] for root in ROOTS}


def project_modules() -> list[tuple[str, Path]]:
    """(module name, file) of every Python file of the project's code (tests excluded).

    Below a root, only files inside packages count: a folder without ``__init__.py``
    (e.g. ``bench/results/work``, where `make bench` exports Triton models) holds data,
    not code."""
    found = []
    for root in ROOTS:
        top = REPO_ROOT / root
        for path in sorted(top.rglob("*.py")):
            below = [folder for folder in path.parents if top in folder.parents]
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
    assert on_disk <= _PROJECT, f"top-level packages outside the design: {sorted(on_disk - _PROJECT)}"
    # A room added under podium/ needs its own row: the face's row holds podium/__init__.py only.
    strays = [module for module, _ in project_modules() if component_of(module) == "podium" and module != "podium"]
    assert strays == [], f"add these to docs/architecture.md's table: {strays}"


def test_the_table_is_read_from_the_document():
    assert len(LAYERS) >= 25 and LAYERS["gateway"][0] == 3
    assert "podium.stores.jobstore" in LAYERS["gateway"][1] and "podium.core.errors" in LAYERS["gateway"][1]
    assert LAYERS["podium.core.errors"] == (1, frozenset())


def test_no_layer_imports_a_higher_one():
    for component, (layer, permitted) in LAYERS.items():
        for name in permitted:
            other = component_of(name)
            assert other is not None and LAYERS[other][0] <= layer, f"{component} (layer {layer}) allows {name}"


@pytest.mark.parametrize(
    ("module", "statement", "complaint"),
    [
        ("podium.client.leak", "import redis", "podium.client imports redis"),
        ("podium.client.leak", "from gateway.service import JobService", "may not import gateway.service"),
        (
            "podium.core.jobs.leak",
            "def later():\n    from podium.stores.jobstore import JobStore",
            "may not import podium.stores.jobstore",
        ),
        ("podium.engine.leak", "import torch", "podium.engine imports torch"),
        ("podium.cluster.leak", "from gateway.server import build_gateway", "may not import gateway.server"),
    ],
)
def test_the_check_catches_a_wrong_arrow(module, statement, complaint, tmp_path):
    fake = tmp_path / "leak.py"
    fake.write_text(f"{statement}\n")
    found = violations([(module, fake)])
    assert found and all(complaint in line for line in found), found


def test_the_scan_sees_the_real_arrows():
    seen = {target for target, _ in imported_names(REPO_ROOT / "gateway" / "model_service.py", "gateway.model_service")}
    assert {"podium.stores.inference", "podium.core.errors", "gateway"} <= {component_of(name) for name in seen}


def test_test_modules_have_unique_basenames():
    """pytest imports test files by basename (rootdir mode): two with one name break collection."""
    seen: dict[str, Path] = {}
    for path in sorted((REPO_ROOT / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path


def test_no_module_is_over_400_lines():
    """Small modules: the generated API aside, none over 400 lines."""
    long = {
        module: lines
        for module, path in project_modules()
        if "_pb2" not in module and (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}, f"split these by what they do: {long}"


def package_faces() -> dict[str, tuple[set[str], Path]]:
    """component -> (its face's ``__all__``, the face's file), for components that are packages."""
    faces = {}
    for component in LAYERS:
        face = REPO_ROOT.joinpath(*component.split("."), "__init__.py")
        if face.is_file():
            found = re.search(r"^__all__ = \[(.*?)\]", face.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
            faces[component] = (set(re.findall(r"\"(\w+)\"", found.group(1))) if found else set(), face)
    return faces


def reaches_past_faces(modules: list[tuple[str, Path]]) -> list[str]:
    """Imports from another component that its face does not offer: a name not in its
    ``__all__``, or a submodule its ``__all__`` does not name as public."""
    faces = package_faces()
    found = []
    for module, path in modules:
        component = component_of(module)
        for target, line in imported_names(path, module):
            other = component_of(target) if target.split(".")[0] in _PROJECT else None
            if other is None or other == component or other.startswith(f"{component}.") or other not in faces:
                continue
            if target == other:
                continue  # the face itself; the names taken from it are checked as other.NAME
            first = target[len(other) + 1 :].split(".")[0]
            if first not in faces[other][0]:
                found.append(f"{module}:{line}: {target} is not in {other}'s __all__")
    return found


def test_other_packages_import_only_what_a_face_offers():
    """A package's ``__all__`` is its public surface: its names, and the submodules it names
    as public. Reaching past it into another package fails here."""
    assert reaches_past_faces(project_modules()) == []


def test_the_face_check_catches_a_reach_into_a_private_module(tmp_path):
    fake = tmp_path / "leak.py"
    fake.write_text(
        "from podium.stores.jobstore.scripts import RECORD_RESULT\nfrom podium.stores.jobstore import JobStore\n"
    )
    found = reaches_past_faces([("gateway.leak", fake)])
    assert found and all("podium.stores.jobstore.scripts" in line for line in found), found


def test_no_class_has_more_than_20_methods():
    """Narrow classes: a class with more to do is split by role (JobStore's roles, JobService's reading)."""
    wide = {}
    for module, path in project_modules():
        if "_pb2" in module:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                count = sum(isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) for item in node.body)
                if count > 20:
                    wide[f"{module}.{node.name}"] = count
    assert wide == {}, f"split these by role: {wide}"
