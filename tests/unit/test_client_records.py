"""The client's own types: one per message it returns, made from the message in one place."""

from __future__ import annotations

import dataclasses

import pytest

from podium.client.records import (
    ClassActivationMap,
    ImageResult,
    ImageStatus,
    Job,
    JobSpec,
    JobState,
    ModelClasses,
    ServiceStatus,
    WorkerStatus,
    from_message,
    own,
)
from podium.core.jobs import Prediction
from podium.core.proto import podium_pb2 as pb

PAIRS = [
    (Job, pb.Job),
    (JobSpec, pb.JobSpec),
    (ImageResult, pb.ImageResult),
    (Prediction, pb.Prediction),
    (ClassActivationMap, pb.ClassActivationMap),
    (ModelClasses, pb.ListClassesResponse),
    (ServiceStatus, pb.GetStatusResponse),
    (WorkerStatus, pb.WorkerStatus),
]


@pytest.mark.parametrize(("record", "message"), PAIRS, ids=[record.__name__ for record, _ in PAIRS])
def test_each_type_has_exactly_its_message_fields(record, message):
    # A field added to the API reaches the client's type, or this fails.
    assert [field.name for field in dataclasses.fields(record)] == [f.name for f in message.DESCRIPTOR.fields]


def test_a_job_is_converted_whole():
    message = pb.Job(
        id="j1",
        state=pb.JOB_STATE_RUNNING,
        total=10,
        succeeded=3,
        failed=1,
        created_at=1.5,
        spec=pb.JobSpec(top_k=3, name="nightly", explain=True, max_failed="5%"),
        mode="path",
        cached=2,
    )
    job = from_message(Job, message)
    assert job.state is JobState.RUNNING and job.state == pb.JOB_STATE_RUNNING and job.state.word == "running"
    assert not job.terminal and from_message(Job, pb.Job(state=pb.JOB_STATE_FAILED)).terminal
    assert job.spec == JobSpec(top_k=3, name="nightly", explain=True, max_failed="5%")
    assert (job.id, job.total, job.succeeded, job.failed, job.cached, job.created_at) == ("j1", 10, 3, 1, 2, 1.5)
    assert hash(job) == hash(from_message(Job, message))  # frozen: usable as a key


def test_an_image_result_has_a_map_only_when_the_message_carries_one():
    plain = pb.ImageResult(
        index=4,
        path="a.jpg",
        status=pb.IMAGE_STATUS_OK,
        top_k=[pb.Prediction(label="rugby", index=70, probability=0.5)],
    )
    result = from_message(ImageResult, plain)
    assert result.cam is None and result.ok and result.status is ImageStatus.OK
    assert result.top_k == (Prediction("rugby", 70, 0.5),)
    explained = pb.ImageResult(
        status=pb.IMAGE_STATUS_OK, cam=pb.ClassActivationMap(class_index=70, rows=1, cols=2, values=[0.5, 1])
    )
    assert from_message(ImageResult, explained).cam == ClassActivationMap(70, 1, 2, (0.5, 1.0))
    failed = from_message(ImageResult, pb.ImageResult(status=pb.IMAGE_STATUS_ERROR, error="empty file"))
    assert not failed.ok and failed.error == "empty file" and failed.top_k == ()


def test_a_status_keeps_its_workers_and_own_takes_either_form():
    status = from_message(ServiceStatus, pb.GetStatusResponse(redis_ok=True, workers=[pb.WorkerStatus(name="w1")]))
    assert status.workers == (WorkerStatus("w1"),) and status.redis_ok and not status.model_ok
    result = ImageResult(index=1)
    assert own(ImageResult, result) is result
    assert own(ImageResult, pb.ImageResult(index=1)) == result
