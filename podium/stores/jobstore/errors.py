"""Redis errors, converted where they leave the store: nothing above it sees a redis exception."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import redis

from podium.core.errors import Internal, ResourceExhausted, Unavailable

T = TypeVar("T")


class StoreUnavailable(Unavailable):
    """Redis cannot be reached, or did not answer in time; the call may be tried again."""

    hint = (
        "the gateway is up but its Redis (PODIUM_REDIS_URL) is not answering: is redis-server running? "
        "Jobs resume once it is back; try again then"
    )


class StoreFull(ResourceExhausted):
    """Redis is at its memory limit (maxmemory with noeviction) and refuses writes."""


class StoreError(Internal):
    """Redis refused a command for another reason (a bug, or a script error)."""


def converted(exc: redis.RedisError) -> Exception:
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return StoreFull("the job store (Redis) is full: new work is refused until finished jobs expire or are deleted")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.exceptions.BusyLoadingError):
        return StoreUnavailable(f"the job store (Redis) is unavailable: {exc}")
    return StoreError(f"the job store (Redis) refused a command: {exc}")


def redis_errors_converted(function: Callable[..., T]) -> Callable[..., T]:
    """Call ``function``; a redis error comes out as a StoreUnavailable, StoreFull or StoreError."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except redis.RedisError as exc:
            raise converted(exc) from exc

    return call


def convert_redis_errors(cls: type[T]) -> type[T]:
    """Class decorator: every public method converts redis errors (see redis_errors_converted)."""
    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, redis_errors_converted(value))
    return cls
