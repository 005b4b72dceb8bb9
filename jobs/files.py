"""Which files of a folder make up a job, in which order.

Client (upload mode) and gateway (path mode) both use this, so a folder gives the same
job either way: every file that is not hidden, nested folders included, sorted by path.
Symbolic links are listed but never followed here; whoever reads them decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def walk_files(root: Path | str) -> Iterator[str]:
    """Relative paths ('/'-separated) of the non-hidden files under root, sorted."""
    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            if is_hidden(name):
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel.replace(os.sep, "/")
