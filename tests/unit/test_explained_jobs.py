"""Explained jobs on fakes: the map from the model to Redis, the API, the JSONL line and the PNG."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gateway.access import ANONYMOUS
from gateway.convert import result_to_proto
from gateway.model_service import ModelService
from gateway.service import JobOptions, JobService
from gateway.settings import GatewaySettings
from podium.cli.failures import exit_code
from podium.cli.main import build_app
from podium.client.heatmaps import HeatmapWriter
from podium.client.output import result_record, write_results
from podium.core.errors import FailedPrecondition, InvalidArgument, Status
from podium.core.imaging import PreprocessSpec
from podium.core.imaging.heatmap import SCALE, overlay, upsampled
from podium.core.jobs import ActivationMap, ImageOutcome, ImageResult, JobMode, Prediction
from podium.stores.inference import classify_bytes
from tests.support.fakes import FakeClassifier, FakeClassifiers, FakeQueue, fake_store, png_bytes, pool
from worker.chunks import process_chunk
from worker.runtime import Runtime
from worker.settings import WorkerSettings

GRID = (7, 7)


def bright_corner_png(size: int = 320) -> bytes:
    """A dark picture with a bright top-left corner: FakeClassifier's map peaks there."""
    pixels = np.full((size, size, 3), 20, dtype=np.uint8)
    pixels[: size // 3, : size // 3] = 240
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the map in the domain and in Redis ------------------------------------------------


def test_a_map_is_quantised_to_bytes_and_its_maximum_stays_one():
    values = np.linspace(0, 1, 49) ** 2
    cam = ActivationMap.of(3, GRID, values)
    assert len(cam.levels) == 49 and max(cam.values) == 1.0 and min(cam.values) == 0.0
    assert np.abs(np.array(cam.values) - values).max() <= 0.5 / 255
    assert np.corrcoef(cam.values, values)[0, 1] > 0.9999
    with pytest.raises(ValueError, match="49 cells"):
        ActivationMap(0, GRID, b"\x00" * 48)


def test_an_outcome_with_a_map_round_trips_and_stays_small():
    plain = ImageOutcome(predictions=(Prediction("archery", 0, 0.9), Prediction("bmx", 1, 0.05)))
    explained = ImageOutcome(
        predictions=plain.predictions, cam=ActivationMap.of(0, GRID, np.random.default_rng(0).random(49))
    )
    assert ImageOutcome.decode(explained.encode()) == explained
    assert ImageOutcome.decode(plain.encode()) == plain
    # 49 bytes in base64 and the grid: what a map adds to each image's entry in Redis.
    assert len(explained.encode()) - len(plain.encode()) <= 90


def test_classify_bytes_asks_for_the_map_only_when_explaining():
    fake = FakeClassifier()
    decoder = WorkerSettings().decoder()
    plain = classify_bytes(fake, bright_corner_png(), 2, decoder)
    explained = classify_bytes(fake, bright_corner_png(), 2, decoder, explain=True)
    assert plain.cam is None and plain.predictions == explained.predictions
    assert explained.cam.class_index == explained.predictions[0].index and explained.cam.grid == GRID
    assert explained.cam.values[0] == 1.0 and explained.cam.values[-1] < 0.2  # the bright corner
    fake.maps = False
    assert "exported without activation maps" in classify_bytes(fake, png_bytes(10), 1, decoder, explain=True).error


def test_a_worker_records_the_maps_of_an_explained_job():
    store = fake_store()
    settings = WorkerSettings(chunk_lease_s=5)
    rt = Runtime(settings, store, FakeClassifiers(), FakeQueue(store), pool(), settings.decoder())
    for explain in (False, True):
        job = store.create(mode=JobMode.UPLOAD, top_k=1, chunk_size=4, explain=explain)
        store.append_files(job.id, 0, ["a.png", "b.png"], [bright_corner_png(), png_bytes(200)])
        store.finish_upload(job.id)
        assert process_chunk(rt, job.id, 0).recorded == 2
        recorded = [outcome for _, outcome in store.results(job.id, 0, 2)]
        assert all((outcome.cam is not None) == explain for outcome in recorded)
        assert store.get(job.id).explain is explain


# --- the gateway -------------------------------------------------------------------------


def jobs_with(classifier: FakeClassifier) -> JobService:
    store = fake_store()
    settings = GatewaySettings()
    return JobService(settings, store, FakeQueue(store), ModelService(settings, lambda ref: classifier))


def test_an_explained_job_needs_a_model_with_maps():
    from gateway.uploads import FileChunk

    job = jobs_with(FakeClassifier()).submit_upload(JobOptions(explain=True, source="/photos"), ANONYMOUS, [])
    assert job.explain and job.source == "/photos"
    without = FakeClassifier(maps=False)
    with pytest.raises(FailedPrecondition, match="exported without activation maps") as caught:
        jobs_with(without).submit_upload(JobOptions(explain=True), ANONYMOUS, [FileChunk("a", b"x", True)])
    assert "podium export" in caught.value.hint
    assert jobs_with(without).submit_upload(JobOptions(), ANONYMOUS, []).explain is False
    with pytest.raises(InvalidArgument, match="source"):
        jobs_with(FakeClassifier()).submit_upload(JobOptions(source="x" * 1001), ANONYMOUS, [])


def test_classify_explains_when_asked_and_refuses_a_model_without_maps():
    model = ModelService(GatewaySettings(), lambda ref: FakeClassifier())
    (outcome,) = model.classify([("a.png", bright_corner_png())], top_k=1, explain=True)
    assert outcome.cam is not None
    with pytest.raises(FailedPrecondition):
        ModelService(GatewaySettings(), lambda ref: FakeClassifier(maps=False)).classify(
            [("a.png", png_bytes(1))], top_k=1, explain=True
        )


# --- the contract's records --------------------------------------------------------------


def explained_record(path: str = "a/photo.jpg") -> dict:
    cam = ActivationMap.of(2, GRID, [1.0 if i == 8 else i / 200 for i in range(49)])
    outcome = ImageOutcome(predictions=(Prediction("archery", 2, 0.75), Prediction("bmx", 1, 0.2)), cam=cam)
    return result_record(result_to_proto(ImageResult(0, path, outcome)))


def test_an_explained_ok_line_carries_the_cam_contract():
    record = explained_record()
    cam = record["cam"]
    assert set(cam) == {"class_index", "grid", "values"}
    assert (cam["class_index"], cam["grid"], len(cam["values"])) == (2, [7, 7], 49)
    assert max(cam["values"]) == 1.0 and min(cam["values"]) >= 0 and cam["values"][8] == 1.0
    assert all(isinstance(v, float) for v in cam["values"])
    plain = result_record(
        result_to_proto(ImageResult(1, "b.jpg", ImageOutcome(predictions=(Prediction("x", 0, 1.0),))))
    )
    assert "cam" not in plain
    failed = result_record(result_to_proto(ImageResult(2, "c.jpg", ImageOutcome(error="empty file (0 bytes)"))))
    assert "cam" not in failed


def test_csv_leaves_the_map_out(tmp_path: Path):
    list(write_results(tmp_path / "r.csv", [explained_record()]))
    (row,) = csv.DictReader((tmp_path / "r.csv").open())
    assert "cam" not in row and not any("0.005" in value for value in row.values())
    list(write_results(tmp_path / "r.jsonl", [explained_record()]))
    assert json.loads((tmp_path / "r.jsonl").read_text())["cam"]["grid"] == [7, 7]


# --- the overlay PNGs --------------------------------------------------------------------


def test_the_overlay_is_the_crop_with_the_map_over_it_and_a_caption():
    picture = Image.new("RGB", (400, 300), (128, 128, 128))
    values = [0.0] * 49
    values[0] = 1.0  # the top-left cell of the centre crop
    drawn = overlay(picture, PreprocessSpec(), GRID, values, "archery  75.0%")
    assert drawn.size == (224 * SCALE, 224 * SCALE + 30)
    pixels = np.asarray(drawn, dtype=np.int16)
    hot, cold = pixels[20, 20], pixels[400, 400]
    assert tuple(cold) == (128, 128, 128)  # where the map is 0 the photograph shows unchanged
    assert np.abs(hot - 128).max() > 40  # coloured where the model looked
    assert pixels[224 * SCALE + 5 :].mean() < 128  # the caption band is dark...
    assert pixels[224 * SCALE + 5 :].max() > 200  # ...with light text on it
    field = upsampled(GRID, values, (224, 224))
    assert field.min() >= 0 and field.max() <= 1 and field[16, 16] > 0.9 and field[200, 200] == 0


def test_heatmaps_mirror_the_folder_and_report_what_they_could_not_draw(tmp_path: Path):
    images = tmp_path / "photos"
    (images / "a").mkdir(parents=True)
    Image.new("RGB", (300, 260), (90, 140, 60)).save(images / "a" / "photo.jpg")
    Image.new("RGB", (300, 260), (90, 140, 60)).save(images / "a" / "photo.png")
    writer = HeatmapWriter(tmp_path / "maps", resize=256, crop=224, images=images)
    first = writer.add(explained_record("a/photo.jpg"))
    second = writer.add(explained_record("a/photo.png"))
    assert first == tmp_path / "maps" / "a" / "photo.png"
    assert second == tmp_path / "maps" / "a" / "photo.png.png"  # no overlay overwrites another
    assert Image.open(first).size == (448, 478) and Image.open(first).format == "PNG"
    assert writer.add(explained_record("a/gone.jpg")) is None
    assert writer.add(explained_record("../../etc/passwd")) is None
    assert writer.missing == ["a/gone.jpg", "../../etc/passwd"]
    assert writer.add(result_record(result_to_proto(ImageResult(3, "a/photo.jpg", ImageOutcome(error="x"))))) is None
    with pytest.raises(InvalidArgument, match="is not a folder") as caught:
        HeatmapWriter(tmp_path / "maps", resize=256, crop=224, images=tmp_path / "nowhere")
    assert "--images" in caught.value.hint


def test_heatmaps_need_wait():
    result = CliRunner().invoke(build_app(), ["submit", ".", "--heatmaps", "out"])
    assert result.exit_code == exit_code(Status.INVALID_ARGUMENT)
    assert "--heatmaps needs --wait" in result.output
