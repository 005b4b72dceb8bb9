"""The Host-header allow-list: a page reached by a name it does not know answers 400.

DNS rebinding: a web site whose name an attacker points at 127.0.0.1 makes the visitor's
browser talk to ``podium up``'s page as if it were that site, with that site's name in the
Host header. The page answers only to localhost, IP addresses (a browser never sends an
address for a name; kubelet probes and port-forwards do) and the names an operator lists
in ``PODIUM_WEB_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


def allowed_names(configured: str, bound_host: str) -> frozenset[str]:
    names = {name.strip().lower().rstrip(".") for name in configured.split(",") if name.strip()}
    return frozenset(names | LOCAL_NAMES | {bound_host.lower()})


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header (``name``, ``name:port``, ``[v6]:port``) names the page."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in allowed
