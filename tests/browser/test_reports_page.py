"""The Email reports page in Chromium (1280 px light and dark, 375 px): addresses added
(an error shown first), the report lists, a spike alert's threshold (an error first) and
list, the mail-off notice; no sideways scroll, axe-core with no serious or critical
violation. And a report's and a spike alert's HTML as a mail client shows them, at the
same sizes, with their numbers in them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from app.jobs.alerts import Reading
from app.jobs.alerts import render as alert_render
from app.jobs.reports import Due, Report, render
from app.storage.meta import Site
from app.storage.reports import Alert
from tests.accounts_fixtures import auth_settings
from tests.browser.conftest import DESKTOP_UA
from tests.browser.test_dashboard_a11y import serious_violations
from tests.browser.test_data_pages import _first_owner, _no_sideways_scroll
from tests.conftest import LiveServer, start_live_server, stop_live_server

SHOTS = os.environ.get("AVOCET_SHOTS_DIR", "")
SIZES = [(1280, "light"), (1280, "dark"), (375, "light")]


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


def _keep(out: Path) -> None:
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)


@pytest.mark.parametrize(("width", "scheme"), SIZES)
def test_reports_page_looks_right_and_passes_axe(
    server: LiveServer, browser: Browser, tmp_path: Path, width: int, scheme: str
) -> None:
    context = browser.new_context(
        user_agent=DESKTOP_UA,
        viewport={"width": width, "height": 900},
        is_mobile=width < 500,
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    out = tmp_path / "shots"
    out.mkdir()
    try:
        page = context.new_page()
        site_id = _first_owner(page, server.url, "shop.example.com")
        page.get_by_role("link", name="Reports").click()
        expect(page.get_by_role("heading", name="Email reports and alerts")).to_be_visible()
        expect(page.locator("#mail-off")).to_contain_text("Mail is off on this server")
        page.get_by_label("Email address").fill("someone@")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator("#e-email")).to_have_text("This isn't a valid email address.")
        page.get_by_label("Email address").fill("team-lead-with-a-long-address@example.com")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Added")
        page.get_by_label("Mail", exact=True).select_option("monthly")
        page.get_by_label("Email address").fill("me@example.com")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("When current visitors (last 5 minutes) reach").fill("0")
        page.locator("form.threshold").first.get_by_role("button", name="Save").click()
        expect(page.locator("#e-threshold_spike")).to_have_text(
            "Enter at least 1 visitor, or leave it blank (off)."
        )
        page.get_by_label("When current visitors (last 5 minutes) reach").fill("50")
        page.locator("form.threshold").first.get_by_role("button", name="Save").click()
        expect(page.locator("#h-threshold_spike")).to_have_text("On at 50 visitors. Blank: off.")
        page.get_by_label("Mail", exact=True).select_option("spike")
        page.get_by_label("Email address").fill("me@example.com")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator("#spike-list tbody tr")).to_have_count(1)
        expect(page.locator("#weekly-list tbody tr")).to_have_count(1)
        expect(page.locator("#monthly-list tbody tr")).to_have_count(1)
        expect(page.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")
        assert page.url.endswith(f"/ui/sites/{site_id}/reports?done=added-alert")
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"reports-{width}-{scheme}.png"), full_page=True)
    finally:
        context.close()
    _keep(out)


def test_a_report_mail_reads_well_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    site = Site(
        "s1", "shop.example.com", "Shop", "Europe/Berlin", "2026-01-01", b"x", "Europe/Berlin"
    )
    first = date(2026, 11, 23)
    report = Report(
        site,
        "weekly",
        Due(
            first,
            first + timedelta(days=6),
            datetime(2026, 11, 30, 8),
            (date(2026, 11, 16), date(2026, 11, 22)),
        ),
        {
            "visitors": 12_840,
            "visits": 15_002,
            "pageviews": 40_310,
            "bounce_rate": 41,
            "visit_duration": 94,
        },
        {},
        {
            "visitors": 12.5,
            "visits": 8.1,
            "pageviews": -3.2,
            "bounce_rate": -2,
            "visit_duration": 0,
        },
        [("Google", 6_120), ("Direct / None", 3_400), ("news.ycombinator.com", 1_210)],
        [("/", 8_800), ("/blog/a-very-long-post-title-that-goes-on-and-on-for-a-while", 2_100)],
    )
    _, _, html = render(report, "https://analytics.example.com", "tok")
    spike = Reading(Alert("s1", "spike", 50, None), site, 73, [("Google", 40)], [("/launch", 61)])
    _, _, alert_html = alert_render(spike, "https://analytics.example.com", "tok")
    out = tmp_path / "shots"
    out.mkdir()
    for width, scheme in SIZES:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=scheme,  # type: ignore[arg-type]
        )
        try:
            page = context.new_page()
            page.set_content(html)
            expect(page.locator("#metrics")).to_contain_text("12.8k")
            expect(page.locator("#metrics")).to_contain_text("1m 34s")
            expect(page.locator("#metrics")).to_contain_text("−2 pts")
            _no_sideways_scroll(page)
            page.screenshot(path=str(out / f"report-mail-{width}-{scheme}.png"), full_page=True)
            page.set_content(alert_html)
            expect(page.locator("#reading")).to_have_text("73")
            _no_sideways_scroll(page)
            page.screenshot(path=str(out / f"alert-mail-{width}-{scheme}.png"), full_page=True)
        finally:
            context.close()
    _keep(out)
