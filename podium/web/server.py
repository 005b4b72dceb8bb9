"""`podium web`: check that the page may listen where it is told, then serve it with uvicorn."""

from __future__ import annotations

import logging
import time

from podium.core.errors import FailedPrecondition, PodiumError, Unauthenticated, Unavailable
from podium.core.settings import is_loopback
from podium.web.link import GatewayLink
from podium.web.settings import WebSettings

log = logging.getLogger(__name__)
RETRY_S = 1.0


def gateway_requires_keys(link: GatewayLink, wait_s: float) -> bool:
    """Whether the gateway refuses a caller without a key (waiting up to wait_s for it to answer)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            link.client("").classes()
            return False
        except Unauthenticated:
            return True
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(RETRY_S)
        except PodiumError:
            return False  # it answered (e.g. no model yet): it let a keyless caller in


def check_exposure(settings: WebSettings, link: GatewayLink) -> None:
    """Fail closed: on a non-loopback address the page serves only a gateway that has API keys
    (every visitor then logs in), unless PODIUM_WEB_ALLOW_UNAUTHENTICATED says a proxy in front
    authenticates."""
    if is_loopback(settings.host) or settings.allow_unauthenticated:
        return
    if not gateway_requires_keys(link, settings.gateway_wait_s):
        raise FailedPrecondition(
            f"the page would listen on {settings.host}, reachable from the network, in front of a gateway "
            f"({settings.gateway}) that takes calls without an API key",
            hint="give the gateway API keys (PODIUM_API_KEYS), or PODIUM_WEB_ALLOW_UNAUTHENTICATED=true if a proxy "
            "in front authenticates, or listen on 127.0.0.1 (--host)",
        )
    if not settings.cookie_secure:
        log.warning("serving on %s: put TLS in front and set PODIUM_WEB_COOKIE_SECURE=true", settings.host)


def serve(settings: WebSettings) -> None:
    import uvicorn

    from podium.web.app import create_app

    link = GatewayLink(settings)
    check_exposure(settings, link)
    app = create_app(settings, link)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # Ctrl-C or SIGTERM: stop gracefully and return (exit 0, like `podium up`); uvicorn
            # would raise the signal again once stopped, and the command would die of it.
            super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()

    Server(config).run()
