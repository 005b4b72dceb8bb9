"""One webhook POST: to the address the egress policy checked, no redirect, one deadline.

http.client, not urllib: urllib follows redirects (to any host) and looks the name up
again when it connects. Here the connection goes to the checked address (TLS still
verifies the certificate against the URL's host name, and sends it as SNI), a 3xx answer
is a failure, and a watchdog closes the socket when the delivery's deadline passes, so a
receiver that trickles a byte at a time cannot hold a sender longer than the time-out.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from urllib.parse import urlsplit

from gateway.egress import EgressPolicy

USER_AGENT = "podium-webhook/1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, policy: EgressPolicy) -> None:
    """One attempt; OSError on anything but a 2xx answer, EgressRefused for a refused receiver."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    address = policy.resolve(host, port)
    connection = _connection(parts.scheme, host, address, port, timeout_s)
    watchdog = threading.Timer(timeout_s, _abort, (connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body, {"User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise OSError(f"HTTP {response.status}: redirects are not followed")
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")
    except (http.client.HTTPException, ssl.SSLError) as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        watchdog.cancel()
        connection.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address``; the Host header still names the URL's host."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to ``address``; SNI and certificate checks use the URL's host."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _connection(scheme: str, host: str, address: str, port: int, timeout_s: float) -> http.client.HTTPConnection:
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    return kind(host, address, port, timeout_s)


def _abort(connection: http.client.HTTPConnection) -> None:
    """The deadline passed: end the blocked read (the sender's thread sees an OSError)."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
