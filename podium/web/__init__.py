"""`podium web`: server-rendered pages over the gateway's gRPC API (no Redis, Triton or Celery)."""

from podium.web.settings import WebSettings
from podium.web.uploads import UploadAborted

__all__ = [
    "UploadAborted",
    "WebSettings",
    "server",
    "settings",
]
