"""Domain objects -> protobuf messages."""

from __future__ import annotations

from gateway.webhooks import shown_webhook
from podium.core.jobs import ImageResult, Job, JobState
from podium.core.proto import podium_pb2 as pb

_STATES = {
    JobState.UPLOADING: pb.JOB_STATE_UPLOADING,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.COMPLETED: pb.JOB_STATE_COMPLETED,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
}
_FROM_PROTO = {value: state for state, value in _STATES.items()}


def state_from_proto(value: int) -> JobState | None:
    """A request's state filter: None for UNSPECIFIED (any state)."""
    return _FROM_PROTO.get(value)


def job_to_proto(job: Job) -> pb.Job:
    return pb.Job(
        id=job.id,
        state=_STATES[job.state],
        total=job.total,
        succeeded=job.succeeded,
        failed=job.failed,
        cached=job.cached,
        unchanged=job.unchanged,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        error=job.error,
        spec=pb.JobSpec(
            top_k=job.top_k,
            name=job.name,
            model=f"{job.model_name}:{job.model_version}",
            explain=job.explain,
            source=job.source,
            webhook=shown_webhook(job.webhook),
            max_failed=job.max_failed,
            job_key=job.job_key,
            incremental=job.incremental,
        ),
        mode=job.mode.value,
    )


def result_to_proto(result: ImageResult) -> pb.ImageResult:
    outcome = result.outcome
    place = {
        "index": result.index,
        "path": result.path,
        "sha256": result.sha256 or "",
        "finished_at": result.finished_at,
    }
    if not outcome.ok:
        return pb.ImageResult(**place, status=pb.IMAGE_STATUS_ERROR, error=outcome.error or "")
    message = pb.ImageResult(
        **place,
        status=pb.IMAGE_STATUS_OK,
        top_k=[pb.Prediction(label=p.label, index=p.index, probability=p.probability) for p in outcome.predictions],
    )
    if outcome.cam is not None:
        rows, cols = outcome.cam.grid
        message.cam.CopyFrom(
            pb.ClassActivationMap(class_index=outcome.cam.class_index, rows=rows, cols=cols, values=outcome.cam.values)
        )
    return message
