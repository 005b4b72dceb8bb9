"""Where `--output` goes: a local FILE.jsonl / FILE.csv, or s3://BUCKET/KEY.jsonl (written
locally first, then uploaded with boto3's standard AWS_* configuration)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podium.core.jobs import S3Url, is_s3_url


@contextmanager
def local_output(output: str | None) -> Iterator[Path | None]:
    """The local file to write; for an s3:// output, a temporary one uploaded on success."""
    if output is None or not is_s3_url(output):
        yield None if output is None else Path(output)
        return
    url = S3Url.parse(output)
    from podium.stores.objectstore import ObjectStore

    with tempfile.TemporaryDirectory(prefix="podium-output-") as folder:
        path = Path(folder) / (Path(url.key).name or "results.jsonl")
        yield path
        ObjectStore().upload(path, url)
