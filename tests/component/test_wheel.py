"""The built wheel adds one import name, ``podium``, plus the services the design names at the
top of the repository (``gateway``, ``worker``, ``export``); bench/, deploy/ and tests/ stay out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.imports import REPO_ROOT

ALLOWED = {"podium", "gateway", "worker", "export"}


def _source_copy(dest: Path) -> Path:
    """The checkout without what is not source (a virtual environment, run folders, models)."""
    skip = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "node_modules")
    for entry in REPO_ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in ("model_repository", "build", "dist"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, ignore=skip, symlinks=True)
        else:
            shutil.copy2(entry, dest / entry.name)
    return dest


def test_the_wheel_installs_only_podium_and_the_design_services(tmp_path):
    source = _source_copy(tmp_path / "src")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            tmp_path / "out",
            source,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "out").glob("podium-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == ALLOWED, f"top-level names besides the design's: {sorted(top - ALLOWED)}"
    # What the installed package needs beside its code, and what it must not carry.
    assert "podium/core/proto/podium.proto" in names
    assert any(name.startswith("podium/web/templates/") for name in names)
    assert any(name.startswith("podium/evaluate/templates/") for name in names)
    assert not any(name.startswith(("bench/", "tests/", "deploy/")) for name in names)
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "podium = podium.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
