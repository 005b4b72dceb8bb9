"""``--heatmaps DIR``: the overlay PNGs of an explained job's results, with a progress bar.

The drawing (``podium.heatmaps``, matplotlib) is loaded only when a command draws.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from podium.cli.progress import progress_bar
from podium.client.api import PodiumClient
from podium.client.records import Job
from podium.core.errors import FailedPrecondition, InvalidArgument

_SHOWN_MISSING = 3


def images_folder(job: Job, given: Path | None) -> Path:
    """Where the job's images lie on this machine: ``--images``, else the folder it was submitted from."""
    if given is not None:
        return given
    source = Path(job.spec.source) if job.spec.source else None
    if source is None or not source.is_dir():
        where = f" ({job.spec.source} is not a folder here)" if job.spec.source else ""
        raise InvalidArgument(
            f"cannot find the images of job {job.id} on this machine{where}",
            hint="pass --images DIR, the folder the job's files came from",
        )
    return source


def write_heatmaps(
    client: PodiumClient, job: Job, records: Iterable[dict], out_dir: Path, images: Path, console: Console
) -> None:
    """Draw every explained ok record's overlay under ``out_dir``; report what was written."""
    if not job.spec.explain:
        raise FailedPrecondition(
            f"job {job.id} was submitted without --explain: its results have no maps to draw",
            hint="submit the folder again with --explain",
        )
    from podium.client.heatmaps import HeatmapWriter

    model = client.classes(job.spec.model)
    writer = HeatmapWriter(out_dir, resize=model.resize, crop=model.crop, images=images)
    with progress_bar(console) as progress:
        task = progress.add_task("drawing heat maps", total=job.succeeded or None, rate="")
        for record in records:
            if writer.add(record) is not None:
                progress.advance(task)
    console.print(f"{len(writer.written)} heat maps written to {escape(str(out_dir))}")
    if writer.missing:
        shown = ", ".join(writer.missing[:_SHOWN_MISSING]) + (", ..." if len(writer.missing) > _SHOWN_MISSING else "")
        console.print(
            f"[yellow]{len(writer.missing)} images could not be read under {escape(str(images))}:[/] {escape(shown)}"
        )


def draw_classified(
    client: PodiumClient, model: str, files: list[Path], records: list[dict], out_dir: Path, console: Console
) -> None:
    """`podium classify --heatmaps`: each file's overlay, named after the file."""
    from podium.client.heatmaps import HeatmapWriter

    served = client.classes(model)
    writer = HeatmapWriter(out_dir, resize=served.resize, crop=served.crop)
    for path, record in zip(files, records, strict=True):
        writer.draw(record, path, Path(path.name))
    console.print(f"{len(writer.written)} heat maps written to {escape(str(out_dir))}")
