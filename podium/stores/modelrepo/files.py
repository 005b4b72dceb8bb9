"""File operations of the model repository: hashes of large files, and writes that are atomic.

Triton and other readers may look at any moment, so nothing is ever written in place:
a file is written beside its final name and renamed over it; a folder is filled as a
hidden staging folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK_BYTES = 1 << 20
# mkdtemp makes 0700 folders; Triton may run as another user (e.g. in a container).
FOLDER_MODE = 0o755


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (checkpoints and models are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def replace_bytes(path: Path, data: bytes) -> None:
    """Write next to ``path`` and rename over it, so readers never see a partial file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def replace_text(path: Path, text: str) -> None:
    replace_bytes(path, text.encode("utf-8"))


def replace_json(path: Path, document: object) -> None:
    replace_text(path, json.dumps(document, indent=2) + "\n")


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; {} when the file is absent or not JSON."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


@contextmanager
def staging_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A hidden temporary folder in ``parent``, removed on exit unless renamed away."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        path.chmod(FOLDER_MODE)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
