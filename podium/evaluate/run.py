"""``podium evaluate``: a labelled folder through the running service, judged against its folders.

The folder holds one sub-folder per class (as the data set's ``test/``); each image's true
class is its first folder. The images go through the service as any job does (upload, or
``--server-path`` for a folder the workers can read), with top-5 answers, and the
predictions are judged by scikit-learn (``podium.evaluate.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from podium.client import PodiumClient
from podium.client.records import Job, ModelClasses
from podium.client.states import is_terminal
from podium.core.errors import InvalidArgument
from podium.core.jobs import walk_files
from podium.core.proto import podium_pb2 as pb
from podium.evaluate.metrics import Evaluation, Judged

TOP_K = 5


@dataclass(frozen=True)
class Source:
    """Where the images are: a local folder (uploaded), or a folder the workers read."""

    folder: Path | None = None
    server_path: str | None = None

    @property
    def shown(self) -> str:
        return str(self.folder) if self.folder else str(self.server_path)


def evaluate_through_service(
    client: PodiumClient,
    source: Source,
    model: str = "",
    ignore_unknown: bool = False,
    on_progress: Callable[[Job], None] | None = None,
) -> tuple[Evaluation, Job]:
    """Classify the folder as a job and judge every answer; InvalidArgument for foreign folders."""
    served = client.classes(model)
    labels = list(served.classes)
    if source.folder is not None:
        _check_classes({_class_of(rel) for rel in walk_files(source.folder)}, labels, ignore_unknown, source)
    job = _run_job(client, source, served, on_progress)
    results = list(client.results(job.id))
    if source.folder is None:
        _check_classes({_class_of(r.path) for r in results}, labels, ignore_unknown, source)
    index = {name: number for number, name in enumerate(labels)}
    model = {
        "name": served.model_name,
        "version": served.model_version,
        "target": served.target,
        "architecture": served.architecture,
    }
    seconds = job.finished_at - job.created_at
    rate = round(job.total / seconds, 2) if job.total and seconds > 0 else None
    evaluation = Evaluation(labels, [], model=model, images_per_s=rate)
    for result in results:
        true = index.get(_class_of(result.path))
        if true is None:
            continue  # --ignore-unknown: a folder that is no class of the model
        if result.status != pb.IMAGE_STATUS_OK:
            evaluation.failed.append((result.path, result.error))
            continue
        top = tuple(p.index for p in result.top_k)
        evaluation.judged.append(Judged(result.path, true, top, float(result.top_k[0].probability)))
    return evaluation, job


def _run_job(client: PodiumClient, source: Source, served: ModelClasses, on_progress) -> Job:
    pinned = f"{served.model_name}:{served.model_version}"
    spec = {"top_k": TOP_K, "name": f"evaluate {Path(source.shown).name}", "model": pinned}
    job = (
        client.submit_path(source.server_path, **spec)
        if source.server_path
        else client.submit_folder(source.folder, **spec)
    )
    for update in client.watch(job.id):
        job = update
        if on_progress:
            on_progress(job)
        if is_terminal(job):
            break
    if job.state != pb.JOB_STATE_COMPLETED:
        raise InvalidArgument(f"the evaluation job {job.id} ended {pb.JobState.Name(job.state)}: {job.error}")
    return job


def _class_of(path: str) -> str:
    return path.split("/", 1)[0] if "/" in path else ""


def _check_classes(found: set[str], labels: list[str], ignore_unknown: bool, source: Source) -> None:
    unknown = sorted(found - set(labels))
    if unknown and not ignore_unknown:
        shown = ", ".join(repr(name) if name else "(files outside any class folder)" for name in unknown[:12])
        more = f" and {len(unknown) - 12} more" if len(unknown) > 12 else ""
        raise InvalidArgument(
            f"{source.shown} has folders that are no class of the served model: {shown}{more}",
            hint="one sub-folder per class of `podium classes`; or pass --ignore-unknown to leave them out",
        )
