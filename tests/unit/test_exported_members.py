"""The client library's public surface, pinned (as httpx's tests/test_exported_members.py does):
a name added to or dropped from ``podium.__all__`` is a decision, made here on purpose."""

from __future__ import annotations

import podium

CLIENT_SURFACE = {
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PodiumClient",
    "PodiumError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
}


def test_the_client_library_exports_exactly_its_surface():
    assert set(podium.__all__) == CLIENT_SURFACE
    assert len(podium.__all__) == len(CLIENT_SURFACE)  # no name twice
    for name in podium.__all__:
        assert getattr(podium, name).__module__ in ("podium.core.errors", "podium.client.api"), name


def test_every_error_it_exports_is_a_podium_error():
    for name in CLIENT_SURFACE - {"PodiumClient"}:
        assert issubclass(getattr(podium, name), podium.PodiumError), name
