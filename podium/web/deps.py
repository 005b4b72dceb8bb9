"""What every route of the page depends on: the app's context, the caller's session, CSRF.

The routes (``pages``, ``api``) and the app (``app``) import this; it imports neither.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from podium.core.errors import InvalidArgument
from podium.web.link import GatewayLink
from podium.web.results import RowCache
from podium.web.sessions import COOKIE_NAME, LoginThrottle, Session, Sessions
from podium.web.settings import WebSettings
from podium.web.thumbnails import ThumbnailStore
from podium.web.views import JobView, job_view

PACKAGE = Path(__file__).resolve().parent
JOB_ID = r"^[0-9a-f]{32}$"


@dataclass
class WebContext:
    settings: WebSettings
    sessions: Sessions
    link: GatewayLink
    thumbnails: ThumbnailStore
    rows: RowCache
    templates: Jinja2Templates
    logins: LoginThrottle


def context(request: Request) -> WebContext:
    return request.app.state.ctx


def current_session(request: Request) -> Session:
    """The caller's session; a visitor without one gets a fresh, anonymous one (for CSRF)."""
    ctx = context(request)
    session = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
    if session is None:
        session, cookie = ctx.sessions.new()
        request.state.new_cookie = cookie
    return session


def signed_in_session(request: Request) -> Session:
    """The caller's session, if the gateway accepts its key (Unauthenticated, so a login
    redirect, if not): for pages that show what no gateway call guards (evaluation reports)."""
    session = current_session(request)
    next(iter(context(request).link.client(session.api_key).list_jobs(page_size=1)), None)
    return session


Ctx = Annotated[WebContext, Depends(context)]
Sess = Annotated[Session, Depends(current_session)]
SignedIn = Annotated[Session, Depends(signed_in_session)]
JOBS_SHOWN = 100  # the newest jobs the jobs list shows


def recent_jobs(ctx: WebContext, session: Session, state: int = 0, name: str = "") -> list[JobView]:
    """The caller's newest JOBS_SHOWN jobs (one ListJobs page)."""
    jobs = ctx.link.client(session.api_key).list_jobs(state=state, name=name, page_size=JOBS_SHOWN)
    return [job_view(job) for job in itertools.islice(jobs, JOBS_SHOWN)]


def set_session_cookie(response: Response, settings: WebSettings, cookie: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
    )


def checked_csrf(request: Request, session: Session, token: str | None) -> None:
    if not context(request).sessions.csrf_ok(session, token):
        raise InvalidArgument(
            "the form is out of date (missing or wrong CSRF token)", hint="reload the page and try again"
        )
