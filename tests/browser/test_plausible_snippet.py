"""A Plausible snippet whose host alone changed, in a real browser: Plausible's script
variants under /plausible/js/ map onto the tracker's attributes (script.hash.js turns hash
routing on), and its queue stub and custom event calls are recorded."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import Page

from tests.browser.conftest import SiteServer
from tests.conftest import LiveServer

ROWS = """
    SELECT name, pathname, CAST(to_json(props) AS VARCHAR) AS props_json
    FROM events WHERE site_id = ? AND name <> 'engagement' ORDER BY ts
"""
# Plausible's installation snippet (its queue stub), with the test-only attribute that lets
# Playwright's chromium (navigator.webdriver) be tracked.
STUB = (
    "<script>window.plausible = window.plausible || function() {"
    " (window.plausible.q = window.plausible.q || []).push(arguments) }</script>"
)


def rows_of(live: LiveServer, site_id: str, count: int) -> list[dict[str, Any]]:
    found = live.wait_rows(ROWS, [site_id], count, timeout=8.0)
    time.sleep(0.6)  # and nothing more arrives
    found = live.rows(ROWS, [site_id])
    for row in found:
        row["props"] = json.loads(row.pop("props_json") or "{}")
    return found


def page_with(live: LiveServer, site: SiteServer, script: str, body: str = "") -> str:
    head = (
        f'<script defer data-domain="shop.test" data-allow-webdriver'
        f' src="{live.url}/plausible/js/{script}"></script>{STUB}'
    )
    html = f"<!doctype html><html><head><title>t</title>{head}</head><body>{body}</body></html>"
    return site.add("/app", html)


def test_hash_variant_counts_hash_routes_and_queued_custom_events(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    live_server.services.sites.reload()
    url = page_with(
        live_server,
        site,
        "script.hash.outbound-links.js",
        "<script>plausible('Signup', {props: {plan: 'pro'}})</script>",
    )
    page.goto(url + "#/home")
    page.wait_for_function("typeof window.plausible === 'function' && !window.plausible.q")
    page.evaluate("location.hash = '#/settings'")
    rows = rows_of(live_server, site_id, 3)
    # the queued call may be replayed before or after the first pageview goes out
    assert sorted((r["name"], r["pathname"]) for r in rows) == [
        ("Signup", "/app#/home"),
        ("pageview", "/app#/home"),
        ("pageview", "/app#/settings"),
    ]
    assert next(r for r in rows if r["name"] == "Signup")["props"] == {"plan": "pro"}


def test_plain_script_ignores_the_hash(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    live_server.services.sites.reload()
    page.goto(page_with(live_server, site, "script.js") + "#/home")
    page.wait_for_function("typeof window.plausible === 'function' && !window.plausible.q")
    page.evaluate("location.hash = '#/settings'")
    rows = rows_of(live_server, site_id, 1)
    assert [(r["name"], r["pathname"]) for r in rows] == [("pageview", "/app")]
