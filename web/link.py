"""The page's one way to the gateway: a PodiumClient per API key, made once and kept."""

from __future__ import annotations

import threading
from collections import OrderedDict

from podium import PodiumClient
from web.settings import WebSettings

MAX_CLIENTS = 64


class GatewayLink:
    def __init__(self, settings: WebSettings) -> None:
        self._settings = settings
        self._clients: OrderedDict[str, PodiumClient] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self._settings.gateway

    def client(self, api_key: str) -> PodiumClient:
        """The client that calls as ``api_key`` ("" for none); the least recently used closed past MAX_CLIENTS."""
        with self._lock:
            client = self._clients.get(api_key)
            if client is None:
                client = PodiumClient(
                    self._settings.gateway,
                    api_key=api_key,
                    reconnect_s=0,
                    tls=self._settings.gateway_tls,
                    tls_ca_file=self._settings.gateway_tls_ca_file,
                )
                self._clients[api_key] = client
                while len(self._clients) > MAX_CLIENTS:
                    self._clients.popitem(last=False)[1].close()
            self._clients.move_to_end(api_key)
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
