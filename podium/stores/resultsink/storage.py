"""Where result files live: a folder (``file:///PATH``) or an S3 prefix (``s3://BUCKET/PREFIX``).

Each job has one folder, ``URL/JOB_ID/``. A file appears whole or not at all: on disk it
is written under a hidden temporary name, synced and renamed; on S3 it is one PUT (or,
for a compacted file, one multipart upload, which S3 completes atomically).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from podium.core.errors import InvalidArgument, NotFound, PodiumError, Unavailable
from podium.core.jobs import S3Url, is_s3_url
from podium.stores.objectstore import ObjectStore
from podium.stores.objectstore.s3 import converted_errors

FILE_SCHEME = "file://"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(parquet|arrow)$")
_ROWS = ".parquet"  # the files of rows; a delta job's listing is an .arrow file beside them
_TEMPORARY = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9._-]*\.[0-9a-f]{32}\.tmp$")  # FileSink.writing's


class SinkUnavailable(Unavailable):
    """The results sink cannot take or give a file now (full disk, refused PUT, network)."""


class Sink(Protocol):
    """A results location: whole files in per-job folders."""

    url: str

    def write(self, job_id: str, name: str, data: bytes) -> None: ...

    def read(self, job_id: str, name: str) -> bytes: ...

    def names(self, job_id: str) -> list[str]:
        """The job's files of rows, sorted by name (temporary files and a listing are not listed)."""
        ...

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[Path]:
        """A local path to write a (large) file to; it lands as ``name`` when the block ends."""
        ...

    def remove(self, job_id: str, names: list[str]) -> None: ...

    def remove_job(self, job_id: str) -> None: ...

    def last_written(self) -> dict[str, float]:
        """Every job folder's newest file time (seconds since the epoch), by job id."""
        ...

    def sweep_temporaries(self, before: float) -> int:
        """Remove what writers killed mid-file left, untouched since ``before``; how many."""
        ...


def open_sink(url: str, client=None) -> Sink:
    """The sink at ``url`` (``file:///PATH`` or ``s3://BUCKET/PREFIX``)."""
    if url.startswith(FILE_SCHEME):
        return FileSink(file_url_path(url))
    if is_s3_url(url):
        return S3Sink(S3Url.parse(url), client)
    raise InvalidArgument(f"results URL {url!r} is neither file:///PATH nor s3://BUCKET/PREFIX")


def file_url_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
        raise InvalidArgument(f"{url!r} is not file:///ABSOLUTE/PATH")
    return Path(unquote(parsed.path))


def _checked(job_id: str, name: str | None = None) -> None:
    # Names come from the store and this package only; checked anyway: no path leaves the sink.
    if not _JOB_ID.match(job_id) or (name is not None and not _NAME.match(name)):
        raise InvalidArgument(f"not a result file: {job_id}/{name}")


class FileSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"{FILE_SCHEME}{root}"

    def _folder(self, job_id: str) -> Path:
        _checked(job_id)
        return self.root / job_id

    def write(self, job_id: str, name: str, data: bytes) -> None:
        with self.writing(job_id, name) as path:
            path.write_bytes(data)

    def read(self, job_id: str, name: str) -> bytes:
        _checked(job_id, name)
        try:
            return (self._folder(job_id) / name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no result file {job_id}/{name} in {self.url}") from None

    def names(self, job_id: str) -> list[str]:
        folder = self._folder(job_id)
        if not folder.is_dir():
            return []
        return sorted(e.name for e in os.scandir(folder) if _NAME.match(e.name) and e.name.endswith(_ROWS))

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[Path]:
        _checked(job_id, name)
        folder = self._folder(job_id)
        with _disk_errors(f"writing {name}"):
            folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"  # _TEMPORARY
        try:
            with _disk_errors(f"writing {name}"):
                yield temporary
                with open(temporary, "rb+") as file:
                    os.fsync(file.fileno())
                os.replace(temporary, folder / name)
                _sync_folder(folder)
        finally:
            temporary.unlink(missing_ok=True)

    def remove(self, job_id: str, names: list[str]) -> None:
        folder = self._folder(job_id)
        for name in names:
            _checked(job_id, name)
            (folder / name).unlink(missing_ok=True)

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self._folder(job_id), ignore_errors=True)

    def last_written(self) -> dict[str, float]:
        found = {}
        with _disk_errors("listing job folders"):
            for folder in self._job_folders():
                times = [entry.stat().st_mtime for entry in os.scandir(folder.path)]
                found[folder.name] = max(times, default=folder.stat().st_mtime)
        return found

    def _job_folders(self) -> Iterator[os.DirEntry]:
        if self.root.is_dir():
            yield from (f for f in os.scandir(self.root) if _JOB_ID.match(f.name) and f.is_dir(follow_symlinks=False))

    def sweep_temporaries(self, before: float) -> int:
        # A writer killed between its first byte and its rename leaves its temporary file;
        # a live one touches it with every write, and no write lasts an hour.
        removed = 0
        with _disk_errors("sweeping temporary files"):
            for folder in self._job_folders():
                for entry in os.scandir(folder.path):
                    if _TEMPORARY.match(entry.name) and entry.stat(follow_symlinks=False).st_mtime < before:
                        Path(entry.path).unlink(missing_ok=True)
                        removed += 1
        return removed


def _sync_folder(folder: Path) -> None:
    """The rename survives a power cut once the folder's entry is on disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _disk_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # full disk, read-only or missing mount, permissions
        raise SinkUnavailable(f"results sink: {doing}: {exc.strerror or exc}") from None


class S3Sink:
    def __init__(self, location: S3Url, client=None) -> None:
        self.location = location
        self.url = str(location)
        self._objects = ObjectStore(client)  # its S3 client is made on first use

    @property
    def client(self):
        return self._objects.client

    def _key(self, job_id: str, name: str = "") -> str:
        _checked(job_id, name or None)
        return f"{self.location.prefix}{job_id}/{name}"

    def write(self, job_id: str, name: str, data: bytes) -> None:
        with _sink_errors(f"writing {self.url}{job_id}/{name}"):
            self.client.put_object(Bucket=self.location.bucket, Key=self._key(job_id, name), Body=data)

    def read(self, job_id: str, name: str) -> bytes:
        with _sink_errors(f"reading {self.url}{job_id}/{name}", reading=True):
            response = self.client.get_object(Bucket=self.location.bucket, Key=self._key(job_id, name))
            with response["Body"] as body:
                return body.read()

    def _keys(self, job_id: str) -> list[str]:
        prefix = self._key(job_id)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
        with _sink_errors(f"listing {self.url}{job_id}/", reading=True):
            return [item["Key"] for page in pages for item in page.get("Contents", ())]

    def names(self, job_id: str) -> list[str]:
        prefix = self._key(job_id)
        names = (key[len(prefix) :] for key in self._keys(job_id))
        return sorted(name for name in names if _NAME.match(name) and name.endswith(_ROWS))

    @contextmanager
    def writing(self, job_id: str, name: str) -> Iterator[Path]:
        key = self._key(job_id, name)
        with tempfile.TemporaryDirectory(prefix="podium-sink-") as folder:
            path = Path(folder) / name
            yield path
            with _sink_errors(f"writing {self.url}{job_id}/{name}"):
                self.client.upload_file(str(path), self.location.bucket, key)

    def remove(self, job_id: str, names: list[str]) -> None:
        self._delete([self._key(job_id, name) for name in names])

    def remove_job(self, job_id: str) -> None:
        self._delete(self._keys(job_id))

    def last_written(self) -> dict[str, float]:
        prefix = self.location.prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
        found: dict[str, float] = {}
        with _sink_errors(f"listing {self.url}", reading=True):
            for page in pages:
                for item in page.get("Contents", ()):
                    job_id = item["Key"][len(prefix) :].partition("/")[0]
                    if _JOB_ID.match(job_id):
                        found[job_id] = max(found.get(job_id, 0.0), item["LastModified"].timestamp())
        return found

    def sweep_temporaries(self, before: float) -> int:
        return 0  # one PUT per file: nothing half-written is ever visible under the prefix

    def _delete(self, keys: list[str]) -> None:
        with _sink_errors(f"deleting from {self.url}"):
            for first in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a call
                objects = [{"Key": key} for key in keys[first : first + 1000]]
                self.client.delete_objects(Bucket=self.location.bucket, Delete={"Objects": objects, "Quiet": True})


@contextmanager
def _sink_errors(doing: str, reading: bool = False) -> Iterator[None]:
    """S3's errors as the sink's: an object missing from a read is NotFound; anything else
    (a missing bucket, refused access, the network) may pass, and the chunk waits for it."""
    try:
        with converted_errors(doing):
            yield
    except NotFound:
        if reading:
            raise
        raise SinkUnavailable(f"results sink: {doing}: no such bucket") from None
    except PodiumError as exc:
        raise SinkUnavailable(f"results sink: {exc.message}", hint=exc.hint) from None
