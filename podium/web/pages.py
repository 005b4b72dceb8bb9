"""The HTML pages: home (upload), jobs, a job's progress and results, quick classify,
evaluation reports, status, login. Each reads the gateway as the session's API key."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from podium.client.states import is_terminal
from podium.core.errors import InvalidArgument, ResourceExhausted, Unauthenticated
from podium.core.proto import podium_pb2 as pb
from podium.web import reports
from podium.web.deps import JOB_ID, Ctx, Sess, SignedIn, checked_csrf, context, recent_jobs, set_session_cookie
from podium.web.results import Query as RowQuery
from podium.web.results import Sort, page_of
from podium.web.sessions import Session
from podium.web.thumbnails import path_key
from podium.web.views import job_view

router = APIRouter()
STATE_FILTERS = {name: value for name, value in pb.JobState.items() if value}


def render(request: Request, template: str, session: Session, status_code: int = 200, **values) -> HTMLResponse:
    values.update(csrf_token=session.csrf_token, logged_in=bool(session.api_key), path=request.url.path)
    return context(request).templates.TemplateResponse(request, template, values, status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ctx: Ctx, session: Sess):
    classes = ctx.link.client(session.api_key).classes()
    return render(request, "home.html", session, model=classes)


@router.get("/jobs", response_class=HTMLResponse)
def jobs(request: Request, ctx: Ctx, session: Sess, state: str = "", name: str = ""):
    wanted = STATE_FILTERS.get(f"JOB_STATE_{state.upper()}", pb.JOB_STATE_UNSPECIFIED) if state else 0
    listed = recent_jobs(ctx, session, wanted, name)
    return render(request, "jobs.html", session, jobs=listed, state=state, name=name)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    ctx: Ctx,
    session: Sess,
    job_id: Annotated[str, Path(pattern=JOB_ID)],
    label: str = "",
    min_probability: Annotated[float, Query(ge=0, le=1)] = 0.0,
    errors: bool = False,
    sort: Sort = Sort.ORDER,
    page: Annotated[int, Query(ge=1)] = 1,
):
    client = ctx.link.client(session.api_key)
    job = client.get_job(job_id)
    rows = ctx.rows.rows(job_id, is_terminal(job), lambda: client.results(job_id))
    query = RowQuery(label, min_probability, errors, sort, page, ctx.settings.page_size)
    shown = page_of(rows, query)
    filters = {
        "label": label,
        "min_probability": min_probability or "",
        "errors": "1" if errors else "",
        "sort": sort.value,
    }
    kept = {k: v for k, v in filters.items() if v and not (k == "sort" and v == Sort.ORDER.value)}

    def page_url(number: int) -> str:
        return f"/jobs/{job_id}?" + urlencode({**kept, "page": number})

    return render(
        request,
        "job.html",
        session,
        job=job_view(job),
        page=shown,
        query=query,
        sorts=list(Sort),
        page_url=page_url,
        thumb_key=path_key,
        filtered=bool(kept.keys() - {"sort"}),
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, ctx: Ctx, session: Sess, job_id: str, csrf_token: Annotated[str, Form()] = ""):
    checked_csrf(request, session, csrf_token)
    ctx.link.client(session.api_key).cancel(_checked_id(job_id))
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/delete")
def delete(request: Request, ctx: Ctx, session: Sess, job_id: str, csrf_token: Annotated[str, Form()] = ""):
    checked_csrf(request, session, csrf_token)
    ctx.link.client(session.api_key).delete(_checked_id(job_id))
    ctx.rows.forget(job_id)
    ctx.thumbnails.discard(job_id)
    return RedirectResponse("/jobs", status_code=303)


def _checked_id(job_id: str) -> str:
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise InvalidArgument(f"{job_id!r} is not a job id (32 hex digits)")
    return job_id


@router.get("/classify", response_class=HTMLResponse)
def classify_page(request: Request, session: Sess):
    return render(request, "classify.html", session)


@router.get("/evaluations", response_class=HTMLResponse)
def evaluations(request: Request, ctx: Ctx, session: SignedIn):
    folder = ctx.settings.reports_dir
    return render(request, "evaluations.html", session, folder=folder, reports=reports.listed(folder))


@router.get("/evaluations/{name}", response_class=HTMLResponse)
def evaluation(request: Request, ctx: Ctx, session: SignedIn, name: str):
    report = reports.read(ctx.settings.reports_dir, name)
    return render(request, "evaluation.html", session, name=name, report=report, **reports.summary(report))


@router.get("/status", response_class=HTMLResponse)
def status(request: Request, ctx: Ctx, session: Sess):
    client = ctx.link.client(session.api_key)
    serving = client.serving()
    health = client.status()
    model = client.classes() if health.model_ok else None
    return render(
        request, "status.html", session, gateway=ctx.link.address, serving=serving, health=health, model=model
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: Sess, next: str = "/"):
    return render(request, "login.html", session, next=_local(next), refused=False)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    ctx: Ctx,
    session: Sess,
    api_key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
):
    checked_csrf(request, session, csrf_token)
    key = api_key.strip()
    address = request.client.host if request.client else ""
    wait_s = ctx.logins.wait_s(address)
    if wait_s > 0:
        raise ResourceExhausted(
            f"too many failed logins from this address; try again in {wait_s:.0f} s",
            hint="check the API key with whoever runs the gateway",
        )
    try:
        if not key:
            raise Unauthenticated("enter an API key")
        ctx.link.client(key).list_jobs(page_size=1).__next__()
    except StopIteration:
        pass  # a key without jobs yet
    except Unauthenticated:
        ctx.logins.failed(address)
        # 200: a form shown again with its error (a 401 is for HTTP authentication, and a console error)
        return render(request, "login.html", session, next=_local(next), refused=True)
    ctx.sessions.end(session)
    _, cookie = ctx.sessions.new(key)  # a new session id at login: a planted cookie learns nothing
    response = RedirectResponse(_local(next), status_code=303)
    set_session_cookie(response, ctx.settings, cookie)
    return response


@router.post("/logout")
def logout(request: Request, ctx: Ctx, session: Sess, csrf_token: Annotated[str, Form()] = ""):
    checked_csrf(request, session, csrf_token)
    ctx.sessions.end(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie("podium_session", path="/")
    return response


def _local(target: str) -> str:
    """Only a path on this site (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
