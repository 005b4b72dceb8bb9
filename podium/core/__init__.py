"""The core every part shares: errors, settings, the job model, imaging, model metadata and
the generated API. It imports no Redis, Celery, torch or Triton client."""

# Public submodules of their own (the subpackages have their own faces).
__all__ = ["allocator", "cpus"]
