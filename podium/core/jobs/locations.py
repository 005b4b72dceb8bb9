"""Where a job's images lie: ``s3://BUCKET/PREFIX`` URLs, parsed and checked (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from podium.core.errors import InvalidArgument, PermissionDenied

S3_SCHEME = "s3://"


def is_s3_url(text: str) -> bool:
    return text.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Url:
    """A bucket and a key (or a key prefix) in it."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> S3Url:
        if not is_s3_url(text):
            raise InvalidArgument(f"not an s3:// URL: {text!r}")
        bucket, _, key = text[len(S3_SCHEME) :].partition("/")
        if not bucket or "/" in bucket or ".." in key.split("/"):
            raise InvalidArgument(f"{text!r} is not s3://BUCKET/KEY")
        return cls(bucket, key)

    @property
    def prefix(self) -> str:
        """The key as a folder: '' or ending in '/' (``s3://b/photos`` lists ``photos/...``)."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    def allowed_in(self, buckets: list[str]) -> S3Url:
        """Itself, if its bucket is one of ``buckets`` (PODIUM_S3_BUCKETS); else PermissionDenied."""
        if self.bucket not in buckets:
            configured = ", ".join(buckets) if buckets else "none: S3 mode is off"
            raise PermissionDenied(
                f"bucket {self.bucket!r} is not one this gateway may read (PODIUM_S3_BUCKETS: {configured})",
                hint="the operator lists readable buckets in PODIUM_S3_BUCKETS",
            )
        return self
