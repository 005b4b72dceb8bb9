"""What the pages' script calls: the upload, quick classify, live progress (server-sent
events fed by WatchJob), the jobs list's refresh, downloads and thumbnails."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import os
import queue
import secrets
import tempfile
import threading
from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from podium.client.output import CSV_COLUMNS, csv_row, result_record
from podium.client.records import ImageResult
from podium.core.errors import FailedPrecondition, InvalidArgument, NotFound, PodiumError
from podium.core.imaging import PreprocessSpec
from podium.core.jobs import JobOptions
from podium.web import reports
from podium.web.deps import JOB_ID, PACKAGE, Ctx, Sess, SignedIn, WebContext, checked_csrf, recent_jobs
from podium.web.sessions import Session
from podium.web.thumbnails import MAX_SOURCE_BYTES, MODEL_VIEW
from podium.web.uploads import relay_upload
from podium.web.views import job_view

router = APIRouter()
JobId = Annotated[str, Path(pattern=JOB_ID)]
CLASSIFY_TOP_K = 3
PLACEHOLDER = PACKAGE / "static" / "no-thumbnail.svg"
MAX_CLASSIFY_BYTES = 64 * 1024**2
# An idle watch still says it is alive this often, so that proxies keep the stream open.
KEEPALIVE_S = 15.0
POLL_S = 1.0  # how soon a closed page's stream is noticed


@router.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@router.post("/api/uploads")
async def upload(request: Request, ctx: Ctx, session: Sess):
    checked_csrf(request, session, request.headers.get("x-csrf-token"))
    options = _options(request.query_params)
    client = ctx.link.client(session.api_key)
    staging = "upload-" + secrets.token_hex(8)
    view = await anyio.to_thread.run_sync(_model_view, client, options.model)
    try:
        job = await relay_upload(
            request.stream(),
            lambda chunks: client.submit_chunks(chunks, options),
            on_file=lambda path, data: ctx.thumbnails.add(staging, path, data, view),
            on_file_max_bytes=MAX_SOURCE_BYTES,
        )
    except BaseException:
        ctx.thumbnails.discard(staging)
        raise
    ctx.thumbnails.rename(staging, job.id)
    return {"job_id": job.id, "url": f"/jobs/{job.id}", "total": job.total}


def _model_view(client, model: str) -> PreprocessSpec:
    """The square the model sees (its resize and crop), which thumbnails show; the default
    view if the gateway cannot say (the upload's own call then says why)."""
    try:
        served = client.classes(model)
    except PodiumError:
        return MODEL_VIEW
    return PreprocessSpec(resize=served.resize, crop=served.crop) if served.crop else MODEL_VIEW


def _options(params) -> JobOptions:
    """The job's options as the page's upload query gives them (any option, parsed by its type)."""
    options = JobOptions.from_text(params)
    return dataclasses.replace(
        options,
        name=options.name[:200],
        source=("browser upload: " + params.get("source", ""))[:1000].rstrip(": "),
    )


@router.post("/api/classify")
def classify(
    request: Request,
    ctx: Ctx,
    session: Sess,
    image: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form()] = "",
):
    checked_csrf(request, session, csrf_token or request.headers.get("x-csrf-token"))
    data = image.file.read(MAX_CLASSIFY_BYTES + 1)
    if len(data) > MAX_CLASSIFY_BYTES:
        raise InvalidArgument(f"the image is larger than {MAX_CLASSIFY_BYTES // 1024**2} MiB")
    (result,) = ctx.link.client(session.api_key).classify_images(
        [(image.filename or "image", data)], top_k=CLASSIFY_TOP_K
    )
    return result_record(result)


@router.get("/api/jobs")
def jobs(ctx: Ctx, session: Sess) -> dict:
    return {"jobs": [view.record() for view in recent_jobs(ctx, session)]}


@router.get("/jobs/{job_id}/events")
async def events(request: Request, ctx: Ctx, session: Sess, job_id: JobId):
    client = ctx.link.client(session.api_key)
    first = await anyio.to_thread.run_sync(client.get_job, job_id)  # NotFound before the stream opens

    async def stream():
        yield _event(job_view(first).record())
        if job_view(first).terminal:
            return
        subscription = client.subscribe(job_id)
        changes: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_into, args=(subscription, changes), daemon=True)
        reader.start()
        quiet_s = 0.0
        try:
            while not await request.is_disconnected():
                try:
                    job = await anyio.to_thread.run_sync(changes.get, True, POLL_S)
                except queue.Empty:
                    quiet_s += POLL_S
                    if quiet_s >= KEEPALIVE_S:
                        quiet_s = 0.0
                        yield ": still watching\n\n"
                    continue
                if job is None:  # the stream ended or broke: the browser's EventSource reconnects
                    return
                record = job_view(job).record()
                yield _event(record)
                if record["terminal"]:
                    return
        finally:
            subscription.cancel()  # frees the gateway's stream and ends the reader

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _read_into(subscription, changes: queue.Queue) -> None:
    try:
        for job in subscription:
            changes.put(job)
    except PodiumError:
        pass  # the page's script sees the stream end and reconnects
    finally:
        changes.put(None)


def _event(record: dict) -> str:
    return f"retry: 2000\ndata: {json.dumps(record)}\n\n"


@router.get("/jobs/{job_id}/results.jsonl")
def results_jsonl(ctx: Ctx, session: Sess, job_id: JobId):
    results = _results(ctx, session, job_id)
    lines = (json.dumps(result_record(result), ensure_ascii=False) + "\n" for result in results)
    return _download(lines, job_id, "jsonl", "application/x-ndjson")


@router.get("/jobs/{job_id}/results.csv")
def results_csv(ctx: Ctx, session: Sess, job_id: JobId):
    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in _results(ctx, session, job_id):
            writer.writerow(csv_row(result_record(result)))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return _download(rows(), job_id, "csv", "text/csv")


@router.get("/jobs/{job_id}/results.parquet")
def results_parquet(ctx: Ctx, session: Sess, job_id: JobId):
    """A completed job's result files as one Parquet file (the sink's columns, read in bulk);
    409 for a job whose answers are not all in files yet (its JSONL and CSV are)."""
    import pyarrow.parquet as pq  # the web extra installs it; only this download needs it

    client = ctx.link.client(session.api_key)
    client.get_job(job_id)
    batches = client.result_batches(job_id)
    first = next(batches, None)  # FailedPrecondition (409) before any byte is sent
    if first is None:
        raise FailedPrecondition(f"job {job_id} has no results to download")
    # Spooled to disk, not memory: a job of millions of rows is a file of tens of MB.
    with tempfile.NamedTemporaryFile(prefix="podium-results-", suffix=".parquet", delete=False) as spool:
        try:
            with pq.ParquetWriter(spool, first.schema, compression="zstd") as writer:
                for batch in itertools.chain([first], batches):
                    writer.write_batch(batch)
        except BaseException:
            os.unlink(spool.name)
            raise
    return FileResponse(
        spool.name,
        media_type="application/vnd.apache.parquet",
        filename=f"podium-{job_id}.parquet",
        background=BackgroundTask(os.unlink, spool.name),
    )


def _results(ctx: WebContext, session: Session, job_id: str) -> Iterator[ImageResult]:
    client = ctx.link.client(session.api_key)
    client.get_job(job_id)  # NotFound as a status, before the response starts
    return client.results(job_id)


def _download(body: Iterator[str], job_id: str, suffix: str, media_type: str) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="podium-{job_id}.{suffix}"'}
    return StreamingResponse((chunk.encode() for chunk in body), media_type=media_type, headers=headers)


@router.get("/jobs/{job_id}/thumbnails/{key}.jpg")
def thumbnail(ctx: Ctx, session: Sess, job_id: JobId, key: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]):
    ctx.link.client(session.api_key).get_job(job_id)  # the caller may see this job
    file = ctx.thumbnails.root / job_id / f"{key}.jpg"
    if not file.is_file():
        # Not uploaded through this page (or unreadable): a neutral picture, not a 404 in the console.
        return FileResponse(PLACEHOLDER, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})
    return FileResponse(file, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/evaluations/{name}/{file}")
def evaluation_file(ctx: Ctx, session: SignedIn, name: str, file: str):
    if file not in reports.FILES:
        raise NotFound(f"no file {file!r} in a report")
    path = reports.folder_of(ctx.settings.reports_dir, name) / file
    if not path.is_file():
        raise NotFound(f"report {name!r} has no {file}")
    headers = {"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"}
    return FileResponse(path, media_type=reports.FILES[file], headers=headers)
