"""Exclusions ("shields") at ingest, over real HTTP: each rule kind keeps and drops the right
hits, before anything is stored, counted per reason; rules apply at once, without a restart,
and never rewrite what was stored before."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import World, auth_settings, running_world


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    # The test client is a proxy (loopback) in front of the visitors; 198.51.100.9 is a
    # second, trusted proxy of the chain.
    proxies = ("127.0.0.0/8", "::1/128", "198.51.100.9/32")
    with running_world(auth_settings(tmp_path, run_jobs=False, trusted_proxies=proxies)) as found:
        yield found


def hit(http: httpx.Client, site: str, url: str, forwarded: str) -> None:
    body = {"n": "pageview", "u": url, "s": site}
    r = http.post("/collect", content=json.dumps(body), headers={"X-Forwarded-For": forwarded})
    assert r.status_code == 204


def stored(world: World, site: str) -> list[tuple[str, str]]:
    rows = world.live.rows(
        "SELECT hostname, pathname FROM events WHERE site_id = ? ORDER BY ts", [site]
    )
    return [(r["hostname"], r["pathname"]) for r in rows]


def wait_counts(http: httpx.Client, site: str, total: int) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while True:
        body: dict[str, object] = http.get(f"/api/v1/sites/{site}/exclusions").json()
        counts = body["excluded_hits"]
        assert isinstance(counts, dict)
        if sum(counts.values()) >= total or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_each_rule_kind_drops_its_hits_when_it_matches(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.example", owner)
    http = world.bearer(world.key(owner, site, ("sites:read", "sites:write")))
    rules = [
        ("ip", "203.0.113.0/24"),
        ("ip", "2001:db8:aa::/48"),
        ("ip", "192.0.2.7"),
        ("hostname", "shop.example"),
        ("hostname", "*.shop.example"),
        ("page", "/admin/*"),
        ("country", "us"),
    ]
    for kind, value in rules:
        r = http.post(f"/api/v1/sites/{site}/exclusions", json={"type": kind, "value": value})
        assert r.status_code == 201, r.text
    listed = http.get(f"/api/v1/sites/{site}/exclusions").json()["exclusions"]
    assert sorted((r["type"], r["value"]) for r in listed) == [
        ("country", "US"),
        ("hostname", "*.shop.example"),
        ("hostname", "shop.example"),
        ("ip", "192.0.2.7/32"),
        ("ip", "2001:db8:aa::/48"),
        ("ip", "203.0.113.0/24"),
        ("page", "/admin/*"),
    ]
    visitor = "192.0.2.50"  # no rule matches this address
    sent = [
        ("https://shop.example/kept-1", "203.0.114.1"),  # next to the range: kept
        ("https://shop.example/ip-1", "203.0.113.200"),  # in 203.0.113.0/24
        ("https://shop.example/ip-2", "2001:db8:aa:1::5"),  # IPv6 /48
        ("https://shop.example/ip-3", "192.0.2.7"),  # a single address
        ("https://shop.example/ip-4", "::ffff:203.0.113.9"),  # IPv4-mapped IPv6
        ("https://shop.example/kept-2", "2001:db8:ab::1"),  # outside the /48: kept
        # a proxy chain: the right-most untrusted hop is the client
        ("https://shop.example/ip-5", f"{visitor}, 203.0.113.4, 198.51.100.9"),
        ("https://shop.example/kept-3", f"203.0.113.4, {visitor}, 198.51.100.9"),
        ("https://staging.example/host-1", visitor),  # not an allowed host
        ("https://www.shop.example/kept-4", visitor),  # www. is the same host
        ("https://eu.shop.example/kept-5", visitor),  # *.shop.example
        ("https://shop.example/admin/users", visitor),  # /admin/*
        ("https://shop.example/administrator", visitor),  # not under /admin/: kept
        ("https://shop.example/us-1", "8.8.8.8"),  # a US address
    ]
    with world.client() as collector:
        for url, forwarded in sent:
            hit(collector, site, url, forwarded)
    body = wait_counts(http, site, 8)
    assert body["excluded_hits"] == {"ip": 5, "hostname": 1, "page": 1, "country": 1}
    assert body["excluded_hits_days"] == 30
    assert stored(world, site) == [
        ("shop.example", "/kept-1"),
        ("shop.example", "/kept-2"),
        ("shop.example", "/kept-3"),
        ("shop.example", "/kept-4"),
        ("eu.shop.example", "/kept-5"),
        ("shop.example", "/administrator"),
    ]
    # the counters are all that is kept of the dropped hits
    counts = world.live.rows(
        "SELECT reason, hits FROM excluded_counts WHERE site_id = ? ORDER BY reason", [site]
    )
    assert [(r["reason"], r["hits"]) for r in counts] == [
        ("country", 1), ("hostname", 1), ("ip", 5), ("page", 1),
    ]  # fmt: skip


def test_a_rule_applies_at_once_and_never_rewrites_stored_data_when_added_or_removed(
    world: World,
) -> None:
    owner = world.user("owner@example.com")
    site = world.site("blog.example", owner)
    http = world.bearer(world.key(owner, site, ("sites:read", "sites:write")))
    with world.client() as collector:
        hit(collector, site, "https://blog.example/before", "192.0.2.1")
        world.live.wait_rows("SELECT * FROM events WHERE site_id = ?", [site], 1)
        rule = http.post(
            f"/api/v1/sites/{site}/exclusions", json={"type": "page", "value": "/before"}
        ).json()["exclusion"]
        hit(collector, site, "https://blog.example/before", "192.0.2.1")  # dropped now
        wait_counts(http, site, 1)
        assert stored(world, site) == [("blog.example", "/before")]  # the old one stays
        gone = http.delete(f"/api/v1/sites/{site}/exclusions/{rule['id']}")
        assert gone.json() == {"ok": True}
        hit(collector, site, "https://blog.example/before", "192.0.2.1")  # kept again
        world.live.wait_rows("SELECT * FROM events WHERE site_id = ?", [site], 2)
    assert stored(world, site) == [("blog.example", "/before")] * 2


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("ip", "203.0.113.0/33", "value: not an IP address or CIDR range: '203.0.113.0/33'"
         " (e.g. 203.0.113.7, 203.0.113.0/24, 2001:db8::/32)"),
        ("hostname", "exa mple.com", "value: not a hostname pattern: 'exa mple.com'"
         " (e.g. example.com, *.example.com)"),
        ("page", "admin", "value: a page path starts with / (e.g. /admin/*), ≤ 500 chars"),
        ("country", "USA", "value: not a two-letter country code: 'USA'"),
        ("city", "Paris", "type: must be one of ip, hostname, page, country"),
        ("ip", " ", "value: can't be blank"),
    ],
)  # fmt: skip
def test_a_rule_is_refused_when_it_is_malformed(
    world: World, kind: str, value: str, message: str
) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.example", owner)
    http = world.bearer(world.key(owner, site, ("sites:read", "sites:write")))
    r = http.post(f"/api/v1/sites/{site}/exclusions", json={"type": kind, "value": value})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == message
