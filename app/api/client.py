"""Who sent a request: the client IP (trusting X-Forwarded-For only from our proxies)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.proxies import TrustedProxies


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
