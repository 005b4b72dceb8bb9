"""The page's one way to the gateway: one gRPC channel, each visitor calling with its own key.

One channel for every visitor, the API key sent with each call: a login tried with any
key, or a thousand visitors, create no channel and close none, so nobody's upload or
event stream is cut short by somebody else's arrival.
"""

from __future__ import annotations

import threading

from podium.client import PodiumClient
from podium.web.settings import WebSettings


class GatewayLink:
    def __init__(self, settings: WebSettings) -> None:
        self._settings = settings
        self._base: PodiumClient | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self._settings.gateway

    def client(self, api_key: str) -> PodiumClient:
        """The client that calls as ``api_key`` ("" for none), over the page's one channel."""
        with self._lock:
            if self._base is None:
                self._base = self._settings.address().connect(reconnect_s=0)
            base = self._base
        return base.with_api_key(api_key)

    def close(self) -> None:
        with self._lock:
            if self._base is not None:
                self._base.close()
            self._base = None
