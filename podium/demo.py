"""`podium demo`: export a model, start a local Podium, classify real photographs, stop."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console

from cluster import ClusterSettings, LocalCluster
from podium.client import PodiumClient
from podium.output import result_record, write_results
from podium.reporting import follow_job, print_summary
from proto import podium_pb2 as pb

DEMO_PHOTOS = 48
MODEL_NAME = "resnet50_sports"


def ensure_model(repo: Path, checkpoint: Path | None, console: Console) -> None:
    """Export once; later demos reuse the model unless the checkpoint changed."""
    from export import export_model  # noqa: PLC0415 - torch is slow to import

    stamp = repo / ".demo-source"
    source = str(checkpoint.resolve()) if checkpoint else "untrained"
    if stamp.exists() and stamp.read_text() == source and (repo / MODEL_NAME / "config.pbtxt").exists():
        console.print(f"model: reusing {repo / MODEL_NAME} ({source})")
        return
    if repo.exists():
        import shutil  # noqa: PLC0415

        shutil.rmtree(repo)
    with console.status("exporting the model to ONNX and a Triton model repository") as status:
        result = export_model(
            checkpoint=checkpoint,
            untrained=checkpoint is None,
            model_repository=repo,
            model_name=MODEL_NAME,
            progress=lambda message: status.update(message),
        )
    stamp.write_text(source)
    console.print(f"model: exported {result.model_dir} (version {result.version})")


def run_demo(directory: Path, checkpoint: Path | None, workers: int, console: Console) -> dict:
    from samples import write_photo_folder  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    repo = directory / "model_repository"
    photos = directory / "photos"
    ensure_model(repo, checkpoint, console)
    if checkpoint is None:
        console.print(
            "[bold yellow]note:[/] no CHECKPOINT given, so the model is UNTRAINED and its labels are meaningless; "
            "run `make demo CHECKPOINT=path/to/resnet50.pt` with a trained one"
        )
    if not photos.exists():
        written = write_photo_folder(photos, count=DEMO_PHOTOS)
        console.print(f"photos: wrote {len(written)} photographs to {photos}")
    settings = ClusterSettings(
        model_repository=repo, model_name=MODEL_NAME, workers=workers, gateway_port=0, run_dir=directory / "run"
    )
    output = directory / "results.jsonl"
    with console.status("starting Redis, Triton, Celery workers and the gateway"):
        cluster = LocalCluster(settings)
        cluster.start()
    try:
        console.print(f"cluster: gateway at {cluster.gateway_address}, logs in {cluster.run_dir}")
        with PodiumClient(cluster.gateway_address) as client:
            started = time.monotonic()
            job = client.submit_folder(photos, top_k=3, name="demo")
            job = follow_job(client, job, console)
            elapsed = time.monotonic() - started
            records = list(write_results(output, (result_record(r) for r in client.results(job.id))))
        print_summary(console, job, records, elapsed, output, show=-1)
    finally:
        with console.status("stopping the cluster"):
            cluster.stop()
    summary = {
        "job_state": pb.JobState.Name(job.state),
        "images": len(records),
        "succeeded": job.succeeded,
        "failed": job.failed,
        "seconds": round(elapsed, 2),
        "images_per_s": round(len(records) / max(elapsed, 1e-6), 2),
        "results": str(output),
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
