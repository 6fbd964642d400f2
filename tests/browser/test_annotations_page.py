"""Annotations on the dashboard in Chromium: the owner adds a note with the form under the
graph (a blank one the browser refuses), it is listed and marked on the graph's
bucket of its day, and deleted with its ×; a share link's dashboard shows neither notes nor
the form. Screenshots at 1280 px light and dark and 375 px, no sideways scroll, axe-core
with no serious or critical violation."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.storage.annotations import add_annotation
from tests.accounts_fixtures import PASSWORD, auth_settings
from tests.browser.conftest import in_three_looks
from tests.browser.test_dashboard_a11y import serious_violations
from tests.browser.test_data_pages import _first_owner, _no_sideways_scroll
from tests.conftest import LiveServer, start_live_server, stop_live_server
from tests.test_funnels import DAY, place_events

SHOTS = os.environ.get("AVOCET_SHOTS_DIR", "")


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


def _sign_in(page: Page, url: str) -> None:
    page.goto(url + "/ui/login")
    page.get_by_label("Email").fill("me@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_notes_are_added_marked_on_the_graph_and_deleted(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "shots"
    out.mkdir()
    week = (DAY - timedelta(days=6)).isoformat(), DAY.isoformat()
    view = f"?period=custom&from={week[0]}&to={week[1]}"
    site_id = ""
    for n, (width, scheme, page) in enumerate(in_three_looks(browser)):
        if n == 0:
            site_id = _first_owner(page, server.url, "shop.test")
            place_events(server, site_id)
            add_annotation(server.services.meta, site_id, week[0], "Old note", None)
        else:
            _sign_in(page, server.url)
        page.goto(f"{server.url}/ui/sites/{site_id}{view}")
        graph = page.locator("#graph")
        if n == 0:
            expect(page.locator(".note-list li")).to_have_count(1)
            page.get_by_text("Add a note").click()
            page.get_by_label("Day of the note").fill(DAY.isoformat())
            page.get_by_role("button", name="Add note").click()
            # A blank note is the browser's to refuse (required): nothing is sent.
            note = page.get_by_label("Note", exact=True)
            assert note.evaluate("e => e.validity.valueMissing") is True
            expect(page.locator(".note-list li")).to_have_count(1)
            page.get_by_label("Note", exact=True).fill("Launched the pricing page")
            page.get_by_role("button", name="Add note").click()
            expect(page.locator(".note-list li")).to_have_count(2)
            # Marked on the first day's bucket and the last's (7 daily buckets).
            expect(graph).to_have_attribute("data-notes", "[0,6]")
            page.get_by_role("button", name="Delete the note Old note").click()
            expect(page.locator(".note-list li")).to_have_count(1)
            expect(graph).to_have_attribute("data-notes", "[6]")
        expect(page.locator(".note-text")).to_have_text(["Launched the pricing page"])
        assert json.loads(graph.get_attribute("data-notes") or "[]") == [6]
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"notes-{width}-{scheme}.png"), full_page=False)
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)
