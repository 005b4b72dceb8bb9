"""Path mode: a folder named by a client must resolve inside a configured data root."""

from __future__ import annotations

import os

from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound


def resolve_under_roots(path: str, roots: list[str]) -> str:
    """The real folder ``path`` names, inside a root; relative paths start at the first root."""
    if not roots:
        raise FailedPrecondition("path mode is off: the gateway has no PODIUM_DATA_ROOTS; upload the folder instead")
    if not path or "\x00" in path:
        raise InvalidArgument("path must be a non-empty folder path")
    real_roots = [os.path.realpath(root) for root in roots]
    candidate = os.path.realpath(path if os.path.isabs(path) else os.path.join(real_roots[0], path))
    for root in real_roots:
        if os.path.commonpath([root, candidate]) == root:
            break
    else:
        raise InvalidArgument(f"{path!r} is outside the data roots this gateway serves ({', '.join(roots)})")
    if not os.path.exists(candidate):
        raise NotFound(f"folder {path!r} does not exist under the data roots")
    if not os.path.isdir(candidate):
        raise InvalidArgument(f"{path!r} is not a folder")
    return candidate
