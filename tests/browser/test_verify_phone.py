"""The verify table on a 375 px phone: every column stays on screen (rows stack as
"column: value" lines), nothing scrolls sideways, the page itself included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.accounts_fixtures import PASSWORD, auth_settings
from tests.browser.conftest import DESKTOP_UA
from tests.browser.test_ui import Shots
from tests.conftest import CHROME_UA, LiveServer, start_live_server, stop_live_server

LONG_PATH = "/blog/a-very-long-article-title-that-goes-on-and-on-without-a-single-space"


@pytest.fixture
def phone_server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


def test_verify_table_fits_a_phone_when_events_have_long_pages(
    phone_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    live = phone_server
    context = browser.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(live.url + "/")
        page.get_by_label("Email").fill("me@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_label("Domain").fill("shop.example.com")
        page.get_by_role("button", name="Add site").click()
        site_id = page.url.split("/")[-2]
        for path in ("/", LONG_PATH):
            body = {
                "n": "pageview",
                "u": f"https://shop.example.com{path}",
                "s": site_id,
                "r": "https://news.ycombinator.com/item?id=123456789",
            }
            sent = httpx.post(f"{live.url}/collect", json=body, headers={"User-Agent": CHROME_UA})
            assert sent.status_code == 204
        rows = page.locator("#recent tbody tr")
        expect(rows).to_have_count(2, timeout=10_000)
        newest = rows.first.locator("td")
        labels = newest.evaluate_all("cells => cells.map(c => c.dataset.label)")
        assert labels == ["Time", "Event", "Page", "Source", "Device", "Country"]
        expect(newest.nth(2)).to_have_text(LONG_PATH)
        # Every cell of the table is inside the viewport's width.
        right = page.evaluate(
            "Math.max(...[...document.querySelectorAll('#recent td')]"
            ".map(td => td.getBoundingClientRect().right))"
        )
        assert right <= 375
        wrap = "document.querySelector('#recent').parentElement"
        assert page.evaluate(f"{wrap}.scrollWidth - {wrap}.clientWidth") <= 0
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        Shots(tmp_path / "screenshots").take(page, "verify-phone")
    finally:
        context.close()
