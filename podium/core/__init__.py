"""The core every part shares: errors, settings, the job model, imaging, model metadata and
the generated API. It imports no Redis, Celery, torch or Triton client."""
