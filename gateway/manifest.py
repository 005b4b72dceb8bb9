"""Manifest lines: each a file under a data root or an s3:// object the gateway may read.

A line that fails the check is not a failed job: it gets an error result, and the job
goes on with the others (``None`` from ``line_error`` means the line is readable in
principle; the worker reads it, and reports what it finds).
"""

from __future__ import annotations

import os

from gateway.uploads import MAX_PATH_BYTES
from podium.core.errors import PodiumError
from podium.core.jobs import S3Url, is_s3_url


def stored_line(line: str) -> str:
    """The line as the job keeps it: a line too long to read is cut, so a manifest of
    megabyte lines costs Redis no more than one of real paths."""
    encoded = line.encode("utf-8", "surrogateescape")
    if len(encoded) <= MAX_PATH_BYTES:
        return line
    return encoded[: MAX_PATH_BYTES - 3].decode("utf-8", "ignore") + "…"


def line_error(line: str, data_roots: list[str], buckets: list[str]) -> str | None:
    """Why a worker may not read ``line``, or None."""
    if len(line.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes; not read"
    if "\x00" in line or ".." in line.split("/"):
        return "path with '..' or a NUL byte; not read"
    if is_s3_url(line):
        try:
            S3Url.parse(line).allowed_in(buckets)
        except PodiumError as exc:
            return exc.message
        return None
    if not os.path.isabs(line):
        return "manifest paths must be absolute (or s3:// URLs); not read"
    if data_root_of(line, data_roots) is None:
        return f"outside the data roots this gateway serves ({', '.join(data_roots) or 'none: path mode is off'})"
    return None


def data_root_of(path: str, data_roots: list[str]) -> str | None:
    """The data root (real path) that holds ``path`` lexically, or None."""
    normal = os.path.normpath(path)
    for root in data_roots:
        real = os.path.realpath(root)
        if normal == real or normal.startswith(real.rstrip("/") + "/"):
            return real
    return None
