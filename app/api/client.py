"""Who sent a request: the client IP (trusting X-Forwarded-For only from our proxies)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHED = 4096  # addresses remembered by each cache below; emptied when full
_LONGEST = 64  # longer strings (no address is) are answered but never cached


class TrustedProxies:
    """The networks whose X-Forwarded-For we believe. What each address string turns out to
    be is cached: `ipaddress` costs ~5 µs a parse, and a tracking hit asks about two
    addresses (the peer and the forwarded client), each returning visitor several times."""

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


def client_ip(request: Request[Any, Any, Any], trusted: TrustedProxies) -> str:
    """The peer address, or, when the peer is a trusted proxy, the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (the left part is client-controlled)."""
    peer = request.client.host if request.client else ""
    if not trusted.trusts(peer):
        return peer
    return resolve_ip(peer, request.headers.get("x-forwarded-for"), trusted)


def resolve_ip(peer: str, forwarded: str | None, trusted: TrustedProxies) -> str:
    """client_ip on raw values: the peer, or the right-most untrusted X-Forwarded-For hop."""
    if not forwarded or not trusted.trusts(peer):
        return peer
    for hop in reversed(forwarded.split(",")):
        hop = hop.strip()
        if hop and not trusted.trusts(hop):
            return trusted.client_address(hop) or peer
    return peer


def is_https(request: Request[Any, Any, Any], trusted: TrustedProxies) -> bool:
    """Whether the client's request came over https (directly, or per a trusted proxy)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    proto = request.headers.get("x-forwarded-proto", "")
    return trusted.trusts(peer) and proto.strip().lower() == "https"


def _valid_ip(value: str) -> str | None:
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:5000"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
