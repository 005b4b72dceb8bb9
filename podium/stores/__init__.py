"""Stores and clients of outside systems: the Redis job store and queue, the Triton client,
the model repository, object storage and the results sink. Each converts its library's
errors into ``PodiumError`` where they enter."""
