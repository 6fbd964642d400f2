"""Who sent a request: the client IP (trusting X-Forwarded-For only from our proxies)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from litestar import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


@lru_cache(maxsize=4096)
def _trusted(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


def client_ip(request: Request[Any, Any, Any], trusted: tuple[Network, ...]) -> str:
    """The peer address, or, when the peer is a trusted proxy, the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (the left part is client-controlled)."""
    peer = request.client.host if request.client else ""
    if not _trusted(peer, trusted):
        return peer
    return resolve_ip(peer, request.headers.get("x-forwarded-for"), trusted)


def resolve_ip(peer: str, forwarded: str | None, trusted: tuple[Network, ...]) -> str:
    """client_ip on raw values: the peer, or the right-most untrusted X-Forwarded-For hop."""
    if not _trusted(peer, trusted):
        return peer
    if not forwarded:
        return peer
    for hop in reversed(forwarded.split(",")):
        hop = hop.strip()
        if hop and not _trusted(hop, trusted):
            return _valid_ip(hop) or peer
    return peer


def is_https(request: Request[Any, Any, Any], trusted: tuple[Network, ...]) -> bool:
    """Whether the client's request came over https (directly, or per a trusted proxy)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    proto = request.headers.get("x-forwarded-proto", "")
    return _trusted(peer, trusted) and proto.strip().lower() == "https"


def _valid_ip(value: str) -> str | None:
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:5000"
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
