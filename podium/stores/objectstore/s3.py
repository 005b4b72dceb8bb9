"""ObjectStore: list an S3 prefix as a job's images, read one object within a size limit, write a file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import InvalidArgument, NotFound, PermissionDenied, PodiumError, Unavailable
from podium.core.jobs import S3Url, is_hidden

_READ_BLOCK = 1024 * 1024
# boto3's own retries ("standard" mode) ride out throttling and brief outages.
_RETRIES = {"max_attempts": 5, "mode": "standard"}


@dataclass(frozen=True)
class S3Object:
    """A listed object: its key relative to the listed prefix, and its size."""

    path: str
    size: int
    etag: str = ""


def s3_client():
    """A boto3 S3 client from the standard configuration (created lazily, thread-safe)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise PodiumError("reading s3:// needs boto3", hint="pip install 'podium[gateway]' (or boto3)") from None
    return boto3.client("s3", config=Config(retries=_RETRIES, connect_timeout=10, read_timeout=60))


class ObjectStore:
    def __init__(self, client=None) -> None:
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = s3_client()
        return self._client

    def list_images(self, url: S3Url) -> Iterator[S3Object]:
        """Objects under the prefix, in key order, page by page; folder markers (keys ending in
        '/', the zero-byte objects consoles create) and hidden ones (a path part starting with
        '.') are skipped. An other empty object stays: it fails as an empty file."""
        prefix = url.prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=url.bucket, Prefix=prefix)
        with converted_errors(f"listing {url}"):
            for page in pages:
                for item in page.get("Contents", ()):
                    key, size = item["Key"], int(item["Size"])
                    path = key[len(prefix) :]
                    if not path or key.endswith("/") or any(is_hidden(part) for part in path.split("/")):
                        continue
                    yield S3Object(path, size, str(item.get("ETag", "")))

    def read(self, url: S3Url, max_bytes: int) -> bytes:
        """The object's bytes, streamed; InvalidArgument beyond ``max_bytes`` (checked before
        and while reading: a listed size may have changed)."""
        with converted_errors(f"reading {url}"):
            response = self.client.get_object(Bucket=url.bucket, Key=url.key)
            size = int(response.get("ContentLength", 0))
            body = response["Body"]
            try:
                if size > max_bytes:
                    raise InvalidArgument(f"object is {size:,} bytes, more than the limit of {max_bytes:,}")
                chunks, total = [], 0
                while block := body.read(_READ_BLOCK):
                    total += len(block)
                    if total > max_bytes:
                        raise InvalidArgument(f"object is more than the limit of {max_bytes:,} bytes")
                    chunks.append(block)
                return b"".join(chunks)
            finally:
                body.close()

    def upload(self, path: Path, url: S3Url) -> None:
        """Write a local file to ``url`` (multipart for large files, boto3's transfer manager)."""
        if not url.key or url.key.endswith("/"):
            raise InvalidArgument(f"{url} names no object: give s3://BUCKET/KEY.jsonl")
        with converted_errors(f"writing {url}"):
            self.client.upload_file(str(path), url.bucket, url.key)


@contextmanager
def converted_errors(doing: str) -> Iterator[None]:
    """botocore's errors as PodiumError: missing bucket or key, access, the network."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise PermissionDenied(
            f"{doing}: no AWS credentials", hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = f"{doing}: {code} {error.get('Message', '')}".strip()
        if code in ("NoSuchBucket", "NoSuchKey", "404", "NotFound"):
            raise NotFound(message) from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise PermissionDenied(message) from None
        raise Unavailable(message) from None
    except BotoCoreError as exc:
        raise Unavailable(f"{doing}: {exc}", hint="is AWS_ENDPOINT_URL right, and the store up?") from None
