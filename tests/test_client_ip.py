"""TrustedProxies: the client address behind trusted proxies, with its answers cached."""

from __future__ import annotations

import pytest

import app.proxies
from app.api.client import resolve_ip
from app.proxies import TrustedProxies


def test_the_rightmost_untrusted_hop_is_the_client_and_answers_stay_right_when_cached() -> None:
    proxies = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8", "::1/128"])
    for _ in range(3):  # the first pass fills the caches, the next ones read them
        assert resolve_ip("127.0.0.1", "203.0.113.7, 10.1.2.3", proxies) == "203.0.113.7"
        assert resolve_ip("127.0.0.1", "198.51.100.2:5000", proxies) == "198.51.100.2"
        assert resolve_ip("127.0.0.1", "[2001:db8::1]:443", proxies) == "2001:db8::1"
        assert resolve_ip("127.0.0.1", "not-an-ip", proxies) == "127.0.0.1"
        assert resolve_ip("127.0.0.1", "10.0.0.9, 127.0.0.5", proxies) == "127.0.0.1"
        # An untrusted peer's X-Forwarded-For is ignored.
        assert resolve_ip("192.0.2.50", "203.0.113.7", proxies) == "192.0.2.50"
        assert proxies.trusts("::1") and not proxies.trusts("2001:db8::2")


def test_caches_are_bounded_and_skip_strings_longer_than_any_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.proxies, "_CACHED", 8)
    proxies = TrustedProxies(["127.0.0.0/8"])
    for i in range(50):
        assert resolve_ip("127.0.0.1", f"198.51.100.{i}", proxies) == f"198.51.100.{i}"
        assert len(proxies._trusted) <= 8 and len(proxies._clients) <= 8
    junk = "x" * 5000
    assert resolve_ip("127.0.0.1", junk, proxies) == "127.0.0.1"
    assert junk not in proxies._trusted and junk not in proxies._clients
