"""create_app: the FastAPI application of `podium web`, a thin client of the gateway."""

from __future__ import annotations

import contextlib
import logging
import threading
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from podium.core.errors import PodiumError, Status, Unauthenticated
from podium.web import api, pages
from podium.web.deps import PACKAGE, WebContext, set_session_cookie
from podium.web.hosts import allowed_names, host_allowed
from podium.web.link import GatewayLink
from podium.web.results import RowCache
from podium.web.sessions import COOKIE_NAME, LoginThrottle, Sessions
from podium.web.settings import WebSettings
from podium.web.thumbnails import ThumbnailStore

HTTP_STATUS: dict[Status, int] = {
    Status.INVALID_ARGUMENT: 400,
    Status.UNAUTHENTICATED: 401,
    Status.PERMISSION_DENIED: 403,
    Status.NOT_FOUND: 404,
    Status.FAILED_PRECONDITION: 409,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
}
THUMBNAIL_SWEEP_S = 3600.0

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # Every script and style is the page's own: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.endswith("/events")


def create_app(settings: WebSettings, link: GatewayLink | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        threading.Thread(
            target=_sweep_thumbnails, args=(app.state.ctx.thumbnails, settings.thumbnail_ttl_s, stop), daemon=True
        ).start()
        yield
        stop.set()
        app.state.ctx.link.close()

    app = FastAPI(title="Podium", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    templates = Jinja2Templates(directory=PACKAGE / "templates")
    app.state.ctx = WebContext(
        settings=settings,
        sessions=Sessions(settings.session_ttl_s),
        logins=LoginThrottle(),
        link=link or GatewayLink(settings),
        thumbnails=ThumbnailStore(settings.cache_dir / "thumbnails", settings.thumbnail_px),
        rows=RowCache(),
        templates=templates,
    )
    known_hosts = allowed_names(settings.allowed_hosts, settings.host)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.middleware("http")
    async def cookies_and_headers(request: Request, call_next):
        if not host_allowed(request.headers.get("host", ""), known_hosts):
            return PlainTextResponse("unknown Host header: add the name to PODIUM_WEB_ALLOWED_HOSTS", status_code=400)
        response = await call_next(request)
        cookie = getattr(request.state, "new_cookie", None)
        if cookie:
            set_session_cookie(response, settings, cookie)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(PodiumError)
    async def podium_error(request: Request, error: PodiumError):
        if isinstance(error, Unauthenticated) and not wants_json(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        status = HTTP_STATUS.get(error.status, 500)
        if wants_json(request):
            return JSONResponse({"error": error.message, "hint": error.hint}, status_code=status)
        session = app.state.ctx.sessions.get(request.cookies.get(COOKIE_NAME))
        values = {
            "error": error,
            "csrf_token": session.csrf_token if session else "",
            "logged_in": bool(session and session.api_key),
            "path": request.url.path,
        }
        return templates.TemplateResponse(request, "error.html", values, status_code=status)

    return app


def _sweep_thumbnails(thumbnails: ThumbnailStore, ttl_s: float, stop: threading.Event) -> None:
    """At start and hourly: thumbnails go when their job has expired (or was deleted elsewhere)."""
    while True:
        try:
            if removed := thumbnails.sweep(ttl_s):
                log.info("removed the thumbnails of %d expired uploads", removed)
        except OSError as exc:
            log.warning("sweeping thumbnails: %s", exc)
        if stop.wait(THUMBNAIL_SWEEP_S):
            return
