"""Object storage through the S3 API (AWS S3, MinIO, GCS's S3 API ...), with boto3.

boto3 reads its standard configuration: ``AWS_ENDPOINT_URL`` (an S3-compatible store),
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, profiles and
instance roles. Podium never sees the credentials: they stay in each process's
environment, never in Redis or a job record. botocore's errors become ``PodiumError`` here.
"""

from podium.stores.objectstore.s3 import ObjectStore, S3Object, s3_client

__all__ = [
    "ObjectStore",
    "S3Object",
    "s3",
    "s3_client",
]
