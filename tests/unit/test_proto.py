"""The generated code in podium/core/proto/ is exactly what podium.proto compiles to."""

from __future__ import annotations

import shutil
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO = Path("podium", "core", "proto")  # also the generated code's import path


def test_generated_code_matches_the_proto(tmp_path):
    (tmp_path / PROTO).mkdir(parents=True)
    shutil.copy(REPO / PROTO / "podium.proto", tmp_path / PROTO / "podium.proto")
    args = [
        "protoc",
        f"-I{tmp_path}",
        f"--python_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        str(tmp_path / PROTO / "podium.proto"),
    ]
    assert protoc.main(args) == 0
    for name in ("podium_pb2.py", "podium_pb2_grpc.py", "podium_pb2.pyi"):
        generated = (tmp_path / PROTO / name).read_text()
        assert generated == (REPO / PROTO / name).read_text(), f"podium/core/proto/{name} is stale: run `make proto`"


def test_every_rpc_and_field_is_commented():
    lines = (REPO / PROTO / "podium.proto").read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        is_field = stripped.endswith(";") and "=" in stripped and not stripped.startswith(("option", "syntax"))
        if stripped.startswith("rpc ") or (is_field and not stripped.startswith("//")):
            before = lines[number - 1].strip()
            assert before.startswith("//"), f"line {number + 1} lacks a comment: {stripped}"
