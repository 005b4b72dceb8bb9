"""Celery workers: read images, preprocess, call Triton, store results."""

from worker.app import create_app
from worker.settings import WorkerSettings

__all__ = [
    "WorkerSettings",
    "create_app",
    "settings",
]
