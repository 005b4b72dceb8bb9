"""The client library's public surface, pinned (as httpx's tests/test_exported_members.py does):
a name added to or dropped from ``podium.__all__`` is a decision, made here on purpose."""

from __future__ import annotations

import podium

RECORDS = "podium.client.records"
TYPES = {"ImageResult", "ImageStatus", "Job", "JobState"}  # what the client returns

CLIENT_SURFACE = {
    "FailedPrecondition",
    "ImageResult",
    "ImageStatus",
    "InvalidArgument",
    "Job",
    "JobState",
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
        assert getattr(podium, name).__module__ in ("podium.core.errors", "podium.client.api", RECORDS), name


def test_every_error_it_exports_is_a_podium_error():
    for name in CLIENT_SURFACE - {"PodiumClient"} - TYPES:
        assert issubclass(getattr(podium, name), podium.PodiumError), name


def test_the_types_it_returns_are_its_own_not_protobuf_messages():
    from google.protobuf.message import Message

    from podium.core.proto import podium_pb2 as pb

    for name in TYPES:
        assert getattr(podium, name).__module__ == RECORDS
        assert not issubclass(getattr(podium, name), Message), name
    # The states and statuses are the wire's numbers, so either side's constants compare equal.
    assert podium.JobState.COMPLETED == pb.JOB_STATE_COMPLETED and podium.ImageStatus.ERROR == pb.IMAGE_STATUS_ERROR
    assert [state.value for state in podium.JobState] == list(pb.JobState.values())
    assert [status.value for status in podium.ImageStatus] == list(pb.ImageStatus.values())
