"""The web page's own logic, in process: FastAPI's TestClient over a fake gateway client
(conftest.py). Logins, sessions and the Host header: test_web_access.py.

What runs against the real gateway, in a real browser, is tests/integration/test_web.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import time

import pytest
from PIL import Image

from podium.client.output import result_record
from podium.core.errors import InvalidArgument
from podium.core.jobs import JobOptions
from podium.core.proto import podium_pb2 as pb
from podium.web.results import Query, Row, RowCache, Sort, page_of
from podium.web.uploads import CHUNK_BYTES, FrameParser
from podium.web.views import duration_text, job_view
from tests.support.web import JOB_ID, finished_job, framed, jpeg, logged_in, result

# --- upload ------------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 7, 4096, 10**7])
def test_the_frame_parser_reads_files_however_the_body_is_cut(piece):
    files = {"a.jpg": b"x" * (CHUNK_BYTES + 5), "empty.png": b"", "sub/ü.jpg": b"abc"}
    body, parser, seen = framed(files), FrameParser(), []
    for start in range(0, len(body), piece):
        seen += list(parser.feed(body[start : start + piece]))
    parser.finish()
    assert all(len(chunk.data) <= CHUNK_BYTES for chunk in seen)
    joined: dict[str, bytes] = {}
    for chunk in seen:
        joined[chunk.path] = joined.get(chunk.path, b"") + chunk.data
    assert joined == files
    assert [chunk.path for chunk in seen if chunk.last] == list(files)


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b'{"path": "a", "size": 10}\nabc', "broke off"), (b"not json\n", "not {path, size}"), (b"", "no file")],
)
def test_a_malformed_upload_is_refused_with_its_reason(body, reason):
    parser = FrameParser()
    with pytest.raises(InvalidArgument, match=reason):
        list(parser.feed(body))
        parser.finish()


def test_an_upload_is_passed_on_with_its_options_and_thumbnails(web, gateway, settings):
    token = logged_in(web)
    files = {"one.jpg": jpeg(), "sub/two.jpg": jpeg((120, 400)), "notes.txt": b"not an image"}
    answer = web.post(
        "/api/uploads?name=match&top_k=3&explain=1&source=Sports",
        content=framed(files),
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": JOB_ID, "url": f"/jobs/{JOB_ID}", "total": 3}
    assert gateway.uploaded == files
    assert gateway.spec == JobOptions(name="match", model="", top_k=3, explain=True, source="browser upload: Sports")
    thumbs = sorted((settings.cache_dir / "thumbnails" / JOB_ID).iterdir())
    assert len(thumbs) == 2  # the text file has none
    assert {Image.open(path).size for path in thumbs} == {(160, 160)}


def test_a_refused_upload_answers_the_gateway_reason_and_keeps_no_thumbnail(web, gateway, settings):
    token = logged_in(web)
    gateway.refuse = InvalidArgument("too many files", hint="split the folder")
    answer = web.post("/api/uploads", content=framed({"a.jpg": jpeg()}), headers={"X-CSRF-Token": token})
    assert answer.status_code == 400
    assert answer.json() == {"error": "too many files", "hint": "split the folder"}
    assert not any((settings.cache_dir / "thumbnails").glob("*/*.jpg"))


def test_an_upload_without_the_csrf_header_is_refused(web, gateway):
    logged_in(web)
    answer = web.post("/api/uploads", content=framed({"a.jpg": jpeg()}))
    assert answer.status_code == 400 and gateway.uploaded == {}


# --- a job's page ------------------------------------------------------------------


def rows_on(page: str) -> list[tuple[str, str]]:
    return re.findall(r'data-testid="result-row" data-path="([^"]*)" data-label="([^"]*)"', page)


def test_the_job_page_shows_state_progress_rows_and_pages(web, gateway):
    results = [result(0, "a.jpg", "ski", 0.9), result(1, "b.jpg", "golf", 0.4), result(2, "c.jpg", error="bad file")]
    finished_job(gateway, results)
    logged_in(web)
    page = web.get(f"/jobs/{JOB_ID}").text
    assert re.search(r'data-testid="job-state"[^>]*>completed<', page)
    assert re.search(r'data-testid="job-progress" max="3" value="3"', page)
    assert rows_on(page) == [("a.jpg", "ski"), ("b.jpg", "golf")]  # page size 2
    assert rows_on(web.get(f"/jobs/{JOB_ID}?page=2").text) == [("c.jpg", "")]
    assert "bad file" in web.get(f"/jobs/{JOB_ID}?errors=1").text
    assert rows_on(web.get(f"/jobs/{JOB_ID}?label=golf").text) == [("b.jpg", "golf")]
    assert rows_on(web.get(f"/jobs/{JOB_ID}?min_probability=0.5").text) == [("a.jpg", "ski")]
    assert rows_on(web.get(f"/jobs/{JOB_ID}?sort=unsure").text) == [("b.jpg", "golf"), ("a.jpg", "ski")]
    assert gateway.result_reads == 1  # a finished job's rows are read from the gateway once
    assert web.get("/jobs/not-a-job-id").status_code == 422
    assert web.get(f"/jobs/{'f' * 32}").status_code == 404


def test_an_explained_job_carries_its_maps_for_the_overlay(web, gateway):
    finished_job(gateway, [result(0, "a.jpg", "ski", 0.9, cam=True)], explain=True)
    logged_in(web)
    page = web.get(f"/jobs/{JOB_ID}").text
    assert 'data-cam="000180ff"' in page and 'width="2" height="2"' in page


def test_downloads_equal_the_contract_records(web, gateway):
    results = [result(0, "a.jpg", "ski", 0.9), result(1, "b.jpg", error="bad file")]
    finished_job(gateway, results)
    logged_in(web)
    lines = web.get(f"/jobs/{JOB_ID}/results.jsonl").text.splitlines()
    assert [json.loads(line) for line in lines] == [result_record(r) for r in results]
    csv_text = web.get(f"/jobs/{JOB_ID}/results.csv").text.splitlines()
    assert csv_text[0] == "path,status,label,index,probability,error,top_k" and len(csv_text) == 3


def test_a_completed_job_downloads_as_parquet_with_the_sink_columns(web, gateway):
    import pyarrow.parquet as pq

    from podium.stores.resultsink import COLUMNS

    results = [result(0, "a.jpg", "ski", 0.9), result(1, "b.jpg", error="bad file"), result(2, "c.jpg", "ski", 0.6)]
    finished_job(gateway, results)
    logged_in(web)
    assert f"/jobs/{JOB_ID}/results.parquet" in web.get(f"/jobs/{JOB_ID}").text
    answer = web.get(f"/jobs/{JOB_ID}/results.parquet")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.apache.parquet"
    assert f"podium-{JOB_ID}.parquet" in answer.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(answer.content))
    assert table.column_names == list(COLUMNS) and table.num_rows == 3
    assert table.column("path").to_pylist() == ["a.jpg", "b.jpg", "c.jpg"]
    assert table.column("status").to_pylist() == ["ok", "error", "ok"]
    assert table.column("label").to_pylist() == ["ski", None, "ski"]
    # A running job's answers are not all in files: 409 saying so, and no link on its page.
    gateway.jobs[JOB_ID] = pb.Job(id=JOB_ID, state=pb.JOB_STATE_RUNNING, total=3, created_at=time.time())
    assert "results.parquet" not in web.get(f"/jobs/{JOB_ID}").text
    refused = web.get(f"/jobs/{JOB_ID}/results.parquet")
    assert refused.status_code == 409 and "not completed" in refused.text


def test_live_progress_streams_each_change_until_the_end(web, gateway):
    running = pb.Job(id=JOB_ID, state=pb.JOB_STATE_RUNNING, total=4, created_at=time.time())
    gateway.jobs[JOB_ID] = running
    gateway.updates = [
        pb.Job(id=JOB_ID, state=pb.JOB_STATE_RUNNING, total=4, succeeded=2, created_at=running.created_at),
        pb.Job(id=JOB_ID, state=pb.JOB_STATE_COMPLETED, total=4, succeeded=4, created_at=running.created_at),
    ]
    logged_in(web)
    with web.stream("GET", f"/jobs/{JOB_ID}/events") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
    assert [(e["state"], e["done"]) for e in events] == [("running", 0), ("running", 2), ("completed", 4)]
    assert gateway.subscription.cancelled  # the gateway's stream is let go


def test_thumbnails_are_served_to_those_who_may_see_the_job(web, gateway, settings):
    token = logged_in(web)
    web.post("/api/uploads", content=framed({"a.jpg": jpeg()}), headers={"X-CSRF-Token": token})
    page = web.get(f"/jobs/{JOB_ID}").text
    src = re.search(r'src="(/jobs/[0-9a-f]+/thumbnails/[0-9a-f]+\.jpg)"', page)
    assert src is None  # no result yet, no row
    from podium.web.thumbnails import path_key

    answer = web.get(f"/jobs/{JOB_ID}/thumbnails/{path_key('a.jpg')}.jpg")
    assert answer.headers["content-type"] == "image/jpeg"
    missing = web.get(f"/jobs/{JOB_ID}/thumbnails/{path_key('none.jpg')}.jpg")
    assert missing.status_code == 200 and missing.headers["content-type"] == "image/svg+xml"
    web.cookies.clear()
    refused = web.get(f"/jobs/{JOB_ID}/thumbnails/{path_key('a.jpg')}.jpg", follow_redirects=False)
    assert refused.status_code == 303  # to the login form


# --- results, views, reports -------------------------------------------------------


def test_row_filters_sorts_and_pages():
    rows = [Row.of(result(i, f"{i}.jpg", "ski" if i % 2 else "golf", i / 10)) for i in range(10)]
    rows.append(Row.of(result(10, "bad.jpg", error="broken")))
    page = page_of(rows, Query(label="ski", min_probability=0.5, page_size=2))
    assert [row.path for row in page.rows] == ["5.jpg", "7.jpg"] and page.matching == 3 and page.pages == 2
    assert [row.path for row in page_of(rows, Query(errors_only=True)).rows] == ["bad.jpg"]
    assert page_of(rows, Query(sort=Sort.CONFIDENT, page_size=1)).rows[0].path == "9.jpg"
    assert page_of(rows, Query(page=99, page_size=5)).page == 3  # past the end: the last page
    assert page_of(rows, Query()).labels == ["golf", "ski"]


def test_the_row_cache_keeps_finished_jobs_within_its_budget():
    cache, reads = RowCache(max_rows=3), []

    def read(n):
        return lambda: reads.append(n) or [result(i, f"{i}", "a", 0.5) for i in range(n)]

    cache.rows("a", True, read(2))
    cache.rows("a", True, read(2))
    cache.rows("running", False, read(1))
    cache.rows("running", False, read(1))
    cache.rows("b", True, read(2))  # over budget: "a" goes
    cache.rows("a", True, read(2))
    assert reads == [2, 1, 1, 2, 2]


def test_a_job_view_says_rate_eta_and_duration():
    job = pb.Job(id=JOB_ID, state=pb.JOB_STATE_RUNNING, total=100, succeeded=40, failed=10, created_at=1000.0)
    view = job_view(job, now=1010.0)
    assert (view.state, view.done, view.rate, view.eta, view.percent) == ("running", 50, 5.0, "10 s", 50.0)
    assert duration_text(3725) == "1 h 02 min" and duration_text(75) == "1 min 15 s"


def test_the_evaluation_page_shows_a_report(web, settings):
    folder = settings.reports_dir / "valid"
    folder.mkdir(parents=True)
    report = {
        "model": {"name": "m", "version": "1"},
        "n_images": 10,
        "n_failed": 0,
        "accuracy": 0.9,
        "accuracy_ci95": [0.6, 0.98],
        "top5_accuracy": 1.0,
        "labels": ["a", "b"],
        "per_class": {n: {"precision": 1.0, "recall": 0.8, "f1": 0.89, "support": 5} for n in ("a", "b")},
        "macro_avg": {"precision": 1, "recall": 0.8, "f1": 0.89},
        "weighted_avg": {"precision": 1, "recall": 0.8, "f1": 0.89},
        "confusion_matrix": [[5, 0], [1, 4]],
        "most_confused": [{"true": "b", "predicted": "a", "count": 1}],
        "misclassified": [{"path": "b/1.jpg", "true": "b", "predicted": "a", "probability": 0.7}],
    }
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "confusion_matrix.png").write_bytes(b"\x89PNG fake")
    # Reports embed photographs: nothing of them without a key the gateway accepts.
    for path in ("/evaluations", "/evaluations/valid", "/evaluations/valid/confusion_matrix.png"):
        refused = web.get(path, follow_redirects=False)
        assert refused.status_code in (303, 401) and b"PNG" not in refused.content
    logged_in(web)
    assert 'href="/evaluations/valid"' in web.get("/evaluations").text
    page = web.get("/evaluations/valid").text
    assert "Accuracy 90.0%" in page and "60.0–98.0%" in page and "b/1.jpg" in page
    assert web.get("/evaluations/valid/confusion_matrix.png").headers["content-type"] == "image/png"
    assert web.get("/evaluations/..%2F..%2Fetc").status_code == 404
    assert web.get("/evaluations/valid/report.json").status_code == 404  # only the report's pictures and page


def test_the_status_page_names_each_part(web):
    logged_in(web)
    page = web.get("/status").text
    assert re.search(r'data-testid="workers-health">1 answering<', page) and "w1" in page
    assert re.search(r'data-testid="model-health">ready<', page)


def test_a_large_file_is_passed_on_without_being_gathered(web, gateway, settings, monkeypatch):
    """Only files small enough for a thumbnail are gathered whole; a larger one streams through."""

    monkeypatch.setattr("podium.web.api.MAX_SOURCE_BYTES", 1024**2)
    gathered: list[tuple[str, int]] = []
    real_add = web.app.state.ctx.thumbnails.add
    monkeypatch.setattr(
        web.app.state.ctx.thumbnails,
        "add",
        lambda owner, path, data, view: gathered.append((path, len(data))) or real_add(owner, path, data, view),
    )
    token = logged_in(web)
    big = bytes(40 * 1024**2)  # forty times the limit
    answer = web.post(
        "/api/uploads",
        content=framed({"small.jpg": jpeg(), "big.jpg": big, "last.jpg": jpeg()}),
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 200, answer.text
    assert gateway.uploaded["big.jpg"] == big  # passed on whole, in 1 MiB pieces
    assert [path for path, _ in gathered] == ["small.jpg", "last.jpg"]  # the big one never gathered
    assert len(list((settings.cache_dir / "thumbnails" / JOB_ID).iterdir())) == 2


def test_thumbnails_show_the_square_the_chosen_model_sees(web, gateway, settings):
    """A model with another resize and crop (EfficientNet-B3: 320, 300) gets thumbnails of its own view."""
    from podium.core.imaging import PreprocessSpec
    from podium.web.thumbnails import path_key, thumbnail_jpeg

    token = logged_in(web)
    picture = wide_jpeg()
    answer = web.post(
        "/api/uploads?model=effnet_b3", content=framed({"wide.jpg": picture}), headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 200, answer.text
    kept = (settings.cache_dir / "thumbnails" / JOB_ID / f"{path_key('wide.jpg')}.jpg").read_bytes()
    side = settings.thumbnail_px
    assert kept == thumbnail_jpeg(picture, side, PreprocessSpec(320, 300))
    assert kept != thumbnail_jpeg(picture, side, PreprocessSpec(256, 224))


def wide_jpeg() -> bytes:
    """A wide picture with detail near its edges, so that the two views crop differently."""
    import numpy as np

    rng = np.random.default_rng(3)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_thumbnails_of_expired_or_elsewhere_deleted_jobs_are_swept(tmp_path):
    from podium.web.thumbnails import STAGING_MAX_AGE_S, ThumbnailStore

    store = ThumbnailStore(tmp_path / "thumbnails", 32)
    now = time.time()
    for folder, age_s in (
        ("old-job", 8 * 86400),
        ("new-job", 3600),
        ("upload-dead", STAGING_MAX_AGE_S + 60),
        ("upload-live", 60),
    ):
        picture = store.root / folder / "a.jpg"
        picture.parent.mkdir(parents=True)
        picture.write_bytes(b"jpeg")
        for path in (picture, picture.parent):
            os.utime(path, (now - age_s, now - age_s))
    assert store.sweep(7 * 86400, now) == 2
    assert sorted(p.name for p in store.root.iterdir()) == ["new-job", "upload-live"]
    assert ThumbnailStore(tmp_path / "none", 32).sweep(60) == 0
