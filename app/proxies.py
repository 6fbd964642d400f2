"""Which peers are our own proxies, and what the addresses they forward turn out to be."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHED = 4096  # addresses remembered by each cache below; emptied when full
_LONGEST = 64  # longer strings (no address is) are answered but never cached


class TrustedProxies:
    """The networks whose X-Forwarded-For we believe. What each address string turns out to
    be is cached: `ipaddress` costs ~5 µs a parse, a tracking hit asks about two addresses
    (the peer and the forwarded client), and the same ones come back with every hit of a
    visit."""

    __slots__ = ("_clients", "_trusted", "networks")

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in networks
        )
        self._trusted: dict[str, bool] = {}
        self._clients: dict[str, str | None] = {}

    def trusts(self, ip: str) -> bool:
        """Whether ip is an address inside one of the networks."""
        answer = self._trusted.get(ip)
        if answer is None:
            answer = _in_networks(ip, self.networks)
            if len(ip) <= _LONGEST:
                if len(self._trusted) >= _CACHED:
                    self._trusted.clear()
                self._trusted[ip] = answer
        return answer

    def client_address(self, hop: str) -> str | None:
        """An X-Forwarded-For hop as a normalised address (port and brackets dropped), or
        None when it is not an address."""
        if hop in self._clients:
            return self._clients[hop]
        address = _valid_ip(hop)
        if len(hop) <= _LONGEST:
            if len(self._clients) >= _CACHED:
                self._clients.clear()
            self._clients[hop] = address
        return address


def _in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


def _valid_ip(value: str) -> str | None:
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:5000"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
