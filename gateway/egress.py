"""Where a webhook may go: addresses on the internet, and the networks an operator opens.

Follows OWASP's SSRF prevention cheat sheet: the receiver's name is resolved once, every
address it resolves to must be a public one (no loopback, private, link-local, CGNAT,
multicast, reserved or unspecified address, IPv4 embedded in IPv6 included), and the
connection goes to the address that was checked, so a second lookup cannot rebind it.
Spellings such as ``2130706433``, ``0177.0.0.1`` or ``[::ffff:127.0.0.1]`` resolve to what
they are and are judged by that. ``PODIUM_WEBHOOK_ALLOW_NETWORKS`` (CIDRs, default none)
opens internal receivers, as GitLab's "allow requests to the local network" does.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from podium.core.errors import InvalidArgument

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOW_SETTING = "PODIUM_WEBHOOK_ALLOW_NETWORKS"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class EgressRefused(InvalidArgument):
    """A webhook receiver that is, or resolves to, an address Podium does not post to."""


@dataclass(frozen=True)
class EgressPolicy:
    allowed: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """From ``"10.0.0.0/8, fd00::/8"``; InvalidArgument naming a CIDR that is none."""
        networks = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise InvalidArgument(f"{ALLOW_SETTING}: {item!r} is not a network in CIDR notation") from exc
        return cls(tuple(networks))

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` is refused, or None when a webhook may go there."""
        if any(address in network for network in self.allowed if network.version == address.version):
            return None
        kind = _internal_kind(address)
        return None if kind is None else f"{address} is {kind} address"

    def check_host(self, host: str) -> None:
        """At submit, without DNS: refuse a host that is an internal address in any spelling."""
        name = host.strip("[]").rstrip(".").lower()
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            self._refuse(host, f"{host} names this machine")
        literal = _literal_address(name)
        if literal is not None and (reason := self.refusal(literal)) is not None:
            self._refuse(host, reason)

    def resolve(self, host: str, port: int) -> str:
        """The one address to connect to: every address ``host`` resolves to must pass."""
        try:
            found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise EgressRefused(f"webhook receiver {host!r} cannot be resolved: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        for address in addresses:
            if (reason := self.refusal(address)) is not None:
                self._refuse(host, reason)
        if not addresses:
            raise EgressRefused(f"webhook receiver {host!r} resolves to no address")
        return str(addresses[0])

    def _refuse(self, host: str, reason: str) -> None:
        raise EgressRefused(
            f"webhook receiver {host} refused: {reason}; webhooks go to public addresses only, "
            f"unless the operator opens a network with {ALLOW_SETTING}"
        )


def _internal_kind(address: Address) -> str | None:
    """What makes an address internal ("a loopback", "a private", ...), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _internal_kind(embedded)
    for kind, flag in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
    ):
        if flag:
            return kind
    # CGNAT (100.64.0.0/10) and the other special-purpose blocks are not global either.
    return None if address.is_global else "a non-public"


def _literal_address(name: str) -> Address | None:
    """``name`` as an IP address, in the spellings resolvers accept (inet_aton's too), or None."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None
