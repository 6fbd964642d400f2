"""Funnels in Chromium: one defined on the Goals page (an error first: one step is not a
funnel), then the dashboard's Goals panel, Funnels tab, shows its steps with the numbers
worked out in tests/test_funnels.py (5, 3, 2 visitors; 60 % and 40 %); a filter asks to be
cleared. Screenshots at 1280 px light and dark and 375 px, no sideways scroll, axe-core
with no serious or critical violation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from app.storage.goals import add_goal
from tests.accounts_fixtures import auth_settings
from tests.browser.conftest import in_three_looks
from tests.browser.test_annotations_page import _sign_in
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


def test_a_funnel_defined_on_the_goals_page_shows_on_the_dashboard(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "shots"
    out.mkdir()
    site_id = ""
    day = DAY.isoformat()
    for n, (width, scheme, page) in enumerate(in_three_looks(browser)):
        if n == 0:
            site_id = _first_owner(page, server.url, "shop.test")
            meta = server.services.meta
            goals = (
                ("page", "/", "Visit /"),
                ("event", "Signup", "Signup"),
                ("page", "/thanks", "Visit /thanks"),
            )
            for kind, value, name in goals:
                add_goal(meta, site_id, kind, value, name, None)
            place_events(server, site_id)
            page.goto(f"{server.url}/ui/sites/{site_id}/goals")
            page.get_by_label("Funnel name").fill("Signup flow")
            page.get_by_label("Step 1", exact=True).select_option(label="Visit /")
            page.get_by_role("button", name="Add funnel").click()
            expect(page.locator("#e-steps")).to_have_text("A funnel has 2 to 8 steps.")
            page.get_by_label("Step 2", exact=True).select_option(label="Signup")
            page.get_by_label("Step 3", exact=True).select_option(label="Visit /thanks")
            page.get_by_role("button", name="Add funnel").click()
        else:
            _sign_in(page, server.url)
            page.goto(f"{server.url}/ui/sites/{site_id}/goals")
        expect(page.locator("#funnel-list > li")).to_have_count(1)
        expect(page.locator("#funnel-list .steps li")).to_have_text(
            ["Visit /", "Signup", "Visit /thanks"]
        )
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"goals-funnels-{width}-{scheme}.png"), full_page=True)

        page.goto(f"{server.url}/ui/sites/{site_id}?period=custom&from={day}&to={day}")
        panel = page.locator("#panel-goals")
        panel.get_by_role("button", name="Funnels").click()
        steps = panel.locator(".funnel-step")
        expect(steps).to_have_count(3)
        assert [steps.nth(i).get_attribute("data-visitors") for i in range(3)] == [
            "5",
            "3",
            "2",
        ]
        expect(panel.locator(".funnel-summary")).to_have_text(
            "5 of 7 visitors entered (71.4%); 2 completed it (40%)."
        )
        expect(steps.nth(1).locator(".funnel-meta")).to_contain_text(
            "60% of step 1 · 2 dropped off (40%)"
        )
        panel.scroll_into_view_if_needed()
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"dashboard-funnel-{width}-{scheme}.png"), full_page=True)
        if n == 0:
            page.goto(
                f"{server.url}/ui/sites/{site_id}?period=custom&from={day}&to={day}&country=DE"
            )
            expect(page.locator("#panel-goals .empty-note")).to_have_text(
                "Funnels count every visitor of the period: clear the filters to see this one."
            )
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)
