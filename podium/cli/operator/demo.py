"""`podium demo`: train (or take) a model, export it, start a local Podium, evaluate it and
classify real photographs with their maps, stop."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rich.console import Console

from export.raw_speed import RawOnnxRuntime
from export.served import exported_model
from podium.cli.progress import follow_job, print_summary
from podium.client.api import PodiumClient
from podium.client.heatmaps import HeatmapWriter, contact_sheet
from podium.client.output import result_record, write_results
from podium.client.records import ModelClasses
from podium.cluster import ClusterSettings, LocalCluster
from podium.core.modelmeta import DEFAULT_MODEL_NAME
from podium.core.proto import podium_pb2 as pb
from podium.samples import write_photo_folder
from podium.train.demo import DEMO_MODEL_NAME, DemoModel, demo_model

DEMO_PHOTOS = 48
RAW_BATCH = 8
RAW_SECONDS = 5.0
SHEET_IMAGES = 6


def run_demo(directory: Path, checkpoint: Path | None, workers: int, console: Console) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    repo = directory / "model_repository"
    photos = directory / "photos"
    own = None
    model_name = DEFAULT_MODEL_NAME
    if checkpoint is None:  # the demo trains its own model (podium/train/demo.py)
        own, model_name = demo_model(directory, console), DEMO_MODEL_NAME
        if own.test_accuracy is not None and repo.exists():
            shutil.rmtree(repo)  # trained afresh: export again
    with console.status("exporting the model to ONNX and a Triton model repository") as status:
        served = exported_model(
            repo, model_name, own.checkpoint if own else checkpoint, "cpu", lambda message: status.update(message)
        )
    console.print(f"model: {served.onnx_path.parent} (from {own.checkpoint if own else checkpoint})")
    if not photos.exists():
        written = write_photo_folder(photos, count=DEMO_PHOTOS)
        console.print(f"photos: wrote {len(written)} photographs to {photos}")
    settings = ClusterSettings(
        model_repository=repo,
        service={"model_name": model_name},
        workers=workers,
        gateway_port=0,
        web_port=0,
        run_dir=directory / "run",
    )
    output = directory / "results.jsonl"
    with console.status("starting Redis, Triton, Celery workers, the gateway and the web page"):
        cluster = LocalCluster(settings)
        cluster.start()
    try:
        console.print(f"cluster: gateway at {cluster.gateway_address}, logs in {cluster.run_dir}")
        console.print(
            f"web: {cluster.web_url}  (while the demo runs; `podium up --model-repository {repo} --model-name "
            f"{model_name}` keeps it up)"
        )
        with PodiumClient(cluster.gateway_address) as client:
            evaluation = _evaluate(client, own, directory, console) if own else None
            started = time.monotonic()
            # Explained: the maps cost little (docs/explain.md) and show what the model looked at.
            job = client.submit_folder(photos, top_k=3, name="demo", explain=True)
            job = follow_job(client, job, console)
            elapsed = time.monotonic() - started
            records = list(write_results(output, (result_record(r) for r in client.results(job.id))))
            served_model = client.classes()
        print_summary(Console(), job, records, elapsed, output, show=-1)
        heatmaps = _heatmaps(records, photos, directory, served_model, console)
    finally:
        with console.status("stopping the cluster"):
            cluster.stop()
    with console.status("measuring raw onnxruntime on the same model, for comparison"):
        raw = RawOnnxRuntime(served).measure(RAW_BATCH, RAW_SECONDS).images_per_s
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
        "heatmaps": str(heatmaps),
        **({"held_out_accuracy": evaluation} if evaluation is not None else {}),
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _evaluate(client: PodiumClient, own: DemoModel, directory: Path, console: Console) -> float:
    """The held-out crops through the service, judged: the report under DIR/evaluation."""
    from podium.evaluate import Source, evaluate_through_service, report_json, write_report_files

    test = own.data / "test"
    with console.status("evaluating on the held-out crops through the service") as status:
        evaluation, _ = evaluate_through_service(
            client,
            Source(folder=test, server_path=None),
            model=DEMO_MODEL_NAME,
            on_progress=lambda job: status.update(f"evaluating: {job.succeeded + job.failed}/{job.total}"),
        )
        document = report_json(evaluation)
        write_report_files(directory / "evaluation", document, test)
    low, high = document["accuracy_ci95"]
    console.print(
        f"evaluation: accuracy {document['accuracy']:.1%} (95% CI {low:.1%}–{high:.1%}) on {document['n_images']} "
        f"held-out crops through the service (chance {1 / len(own.classes):.1%}); report in {directory / 'evaluation'}"
    )
    return round(float(document["accuracy"]), 4)


def _heatmaps(records: list[dict], photos: Path, directory: Path, model: ModelClasses, console: Console) -> Path:
    """Every photo's overlay under DIR/heatmaps, and the first few on one sheet, DIR/heatmaps.png."""
    writer = HeatmapWriter(directory / "heatmaps", resize=model.resize, crop=model.crop, images=photos)
    with console.status("drawing the class activation maps over the photos"):
        for record in records:
            writer.add(record)
    sheet = directory / "heatmaps.png"
    contact_sheet(writer.written[:SHEET_IMAGES]).save(sheet)
    console.print(f"heat maps: {len(writer.written)} overlays in {writer.out_dir}, the first {SHEET_IMAGES} on {sheet}")
    if model.untrained:
        console.print("[yellow]the model is untrained: where its maps point means nothing yet[/]")
    return writer.out_dir
