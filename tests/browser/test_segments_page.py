"""Segments on the dashboard in Chromium: the owner saves the current filters as a segment
from the filter row, clears them, and applies the segment from the filter menu (the same
filters come back, in the URL too); a segment is deleted with its ×. Screenshots of the
menu at 1280 px light and dark and 375 px, no sideways scroll, axe-core with no serious or
critical violation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.accounts_fixtures import auth_settings
from tests.browser.conftest import in_three_looks
from tests.browser.test_annotations_page import _sign_in
from tests.browser.test_dashboard_a11y import serious_violations
from tests.browser.test_data_pages import _first_owner, _no_sideways_scroll
from tests.conftest import LiveServer, start_live_server, stop_live_server
from tests.test_funnels import place_events

SHOTS = os.environ.get("AVOCET_SHOTS_DIR", "")


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


def test_a_segment_is_saved_from_the_filters_and_applied_from_the_menu(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "shots"
    out.mkdir()
    site_id = ""
    for n, (width, scheme, page) in enumerate(in_three_looks(browser)):
        if n == 0:
            site_id = _first_owner(page, server.url, "shop.test")
            place_events(server, site_id)
            page.goto(f"{server.url}/ui/sites/{site_id}?period=7d&page=/thanks&device=desktop")
            page.get_by_role("button", name="Save as segment").click()
            page.get_by_label("Segment name").fill("Thanks on desktop")
            page.screenshot(path=str(out / "segments-save-1280-light.png"), full_page=False)
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_role("button", name="Save as segment")).to_be_visible()
            page.get_by_role("button", name="Clear all").click()
            expect(page.locator("#filters .chip")).to_have_count(0)
        else:
            _sign_in(page, server.url)
            page.goto(f"{server.url}/ui/sites/{site_id}?period=7d")
        page.locator("#filter-button").click()
        menu = page.locator("#filter-menu")
        expect(menu.locator(".segment-apply")).to_have_text(["Thanks on desktop"])
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"segments-{width}-{scheme}.png"), full_page=False)
        menu.get_by_role("button", name="Thanks on desktop", exact=True).click()
        expect(page.locator("#filters .chip")).to_have_count(2)
        assert "page=/thanks&device=desktop" in page.url
        if n == 2:
            page.locator("#filter-button").click()
            page.get_by_role("button", name="Delete the segment Thanks on desktop").click()
            expect(menu.locator(".segment-apply")).to_have_count(0)
            segments = server.services.meta.fetchall("SELECT name FROM segments")
            assert segments == []
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)
