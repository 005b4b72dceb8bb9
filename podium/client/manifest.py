"""Manifests for `podium submit --manifest`: one image per line, or a CSV with a ``path`` column.

A CSV's other columns travel with each image into its result line as ``"meta"`` (the
client joins them back by position: results keep the manifest's order).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.errors import InvalidArgument

PATH_COLUMN = "path"


@dataclass(frozen=True)
class Manifest:
    paths: list[str]
    meta: list[dict[str, str]] = field(default_factory=list)  # one per path, or none at all


def read_manifest(path: Path) -> Manifest:
    """Lines (blank ones and '#' comments skipped), or a .csv with a header naming ``path``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidArgument(f"cannot read the manifest {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"the manifest {path} is not UTF-8 text") from None
    if path.suffix.lower() != ".csv":
        lines = [line.strip() for line in text.splitlines()]
        return Manifest([line for line in lines if line and not line.startswith("#")])
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        return Manifest([])
    if PATH_COLUMN not in rows[0]:
        raise InvalidArgument(f"the manifest {path} has no {PATH_COLUMN!r} column", hint="name the column 'path'")
    rows = [row for row in rows if (row.get(PATH_COLUMN) or "").strip()]
    meta = [{key: value for key, value in row.items() if key != PATH_COLUMN and key is not None} for row in rows]
    return Manifest([row[PATH_COLUMN].strip() for row in rows], meta if any(meta) else [])
