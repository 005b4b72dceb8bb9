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
RAW_BATCH = 8
RAW_SECONDS = 5.0


def raw_onnxruntime_rate(model_dir: Path, seconds: float = RAW_SECONDS) -> float:
    """Images/s of onnxruntime alone on the newest version's ONNX model: the ceiling here."""
    import numpy as np
    import onnxruntime as ort

    newest = max((p for p in model_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    session = ort.InferenceSession(str(newest / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).integers(0, 256, (RAW_BATCH, 224, 224, 3), dtype=np.uint8)
    name = session.get_inputs()[0].name
    session.run(None, {name: batch})  # warm-up
    runs, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        session.run(None, {name: batch})
        runs += 1
    return runs * RAW_BATCH / (time.monotonic() - started)


def ensure_model(repo: Path, checkpoint: Path | None, console: Console) -> None:
    """Export once; later demos reuse the model unless the checkpoint changed."""
    from export import export_model

    stamp = repo / ".demo-source"
    source = str(checkpoint.resolve()) if checkpoint else "untrained"
    if stamp.exists() and stamp.read_text() == source and (repo / MODEL_NAME / "config.pbtxt").exists():
        console.print(f"model: reusing {repo / MODEL_NAME} ({source})")
        return
    if repo.exists():
        import shutil

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
    from samples import write_photo_folder

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
        print_summary(Console(), job, records, elapsed, output, show=-1)
    finally:
        with console.status("stopping the cluster"):
            cluster.stop()
    with console.status("measuring raw onnxruntime on the same model, for comparison"):
        raw = raw_onnxruntime_rate(repo / MODEL_NAME)
    rate = len(records) / max(elapsed, 1e-6)
    console.print(
        f"side by side: end to end {rate:.1f} images/s; raw onnxruntime on the same ONNX model "
        f"{raw:.1f} images/s (batch {RAW_BATCH}, no decoding) = {rate / raw:.2f}x"
    )
    summary = {
        "job_state": pb.JobState.Name(job.state),
        "images": len(records),
        "succeeded": job.succeeded,
        "failed": job.failed,
        "seconds": round(elapsed, 2),
        "images_per_s": round(rate, 2),
        "raw_onnxruntime_images_per_s": round(raw, 2),
        "results": str(output),
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
