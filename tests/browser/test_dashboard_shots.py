"""The README's dashboard screenshots, taken by this test on `realistic_visits` (30 days of
a growing site, purchases in euros, dollars and pounds): 1280 px light, 1280 px dark and a
375 px phone. They land in the test's temp dir; with AVOCET_UPDATE_SCREENSHOTS=1 they are
copied to docs/screenshots/dashboard-{light,dark,phone}.png.

It also holds what a screenshot shows: the page fits a phone without sideways scrolling,
devices read as people say them, and the Goals panel gives revenue per currency."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from app.auth.passwords import Passwords
from app.storage.accounts import create_user, set_role
from app.storage.goals import add_goal
from tests.accounts_fixtures import FAST_AUTH, PASSWORD, auth_settings
from tests.browser import dashboard_data as data
from tests.browser.conftest import DESKTOP_UA, ROOT
from tests.conftest import LiveServer, start_live_server, stop_live_server

EMAIL = "me@example.com"
SHOTS = {"light": (1280, "light"), "dark": (1280, "dark"), "phone": (375, "light")}


class Demo:
    def __init__(
        self, live: LiveServer, site_id: str, state: dict[str, Any], visits: list[data.Visit]
    ) -> None:
        self.live, self.site_id, self.state, self.visits = live, site_id, state, visits

    @property
    def url(self) -> str:
        return f"{self.live.url}/ui/sites/{self.site_id}"


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, playwright: object, browser: Browser
) -> Iterator[Demo]:
    live = start_live_server(auth_settings(tmp_path_factory.mktemp("shots"), run_jobs=False))
    try:
        meta = live.services.meta
        user = create_user(meta, EMAIL, Passwords(FAST_AUTH).hash_sync(PASSWORD))
        site = meta.add_site("avocet.example", timezone="UTC")
        set_role(meta, site.id, user.id, "owner")
        add_goal(meta, site.id, "event", "Purchase", "Purchase")
        add_goal(meta, site.id, "event", "Signup", "Signup")
        add_goal(meta, site.id, "page", "/pricing", "Visit /pricing")
        live.services.sites.reload()
        visits = data.realistic_visits(datetime.now(UTC))
        data.load(live, site.id, visits)
        first = browser.new_context(user_agent=DESKTOP_UA)
        answer = first.request.post(
            live.url + "/api/v1/auth/login",
            data={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": live.url},
        )
        assert answer.ok, answer.text()
        state = first.storage_state()
        first.close()
        yield Demo(live, site.id, state, visits)  # type: ignore[arg-type]
    finally:
        stop_live_server(live)


def open_dashboard(browser: Browser, demo: Demo, width: int, scheme: str) -> Page:
    context = browser.new_context(
        user_agent=DESKTOP_UA,
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        storage_state=demo.state,  # type: ignore[arg-type]
        timezone_id="UTC",
    )
    page = context.new_page()
    page.goto(demo.url)
    # Every panel of the first view rendered (the map too): the mark bench/ times.
    ready = "performance.getEntriesByName('avocet:ready').length > 0"
    for _ in range(200):  # (wait_for_function evaluates a string: the page's CSP forbids)
        if page.evaluate(ready):
            break
        page.wait_for_timeout(50)
    assert page.evaluate(ready)
    expect(page.locator("#panel-goals .row[data-property=goal]").first).to_be_visible()
    page.evaluate("document.fonts.ready")
    return page


@pytest.mark.parametrize("name", list(SHOTS))
def test_dashboard_screenshot_when_shown(
    browser: Browser, demo: Demo, tmp_path: Path, name: str
) -> None:
    width, scheme = SHOTS[name]
    page = open_dashboard(browser, demo, width, scheme)
    try:
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"sideways scroll at {width} px: {scroll}"
        # Display labels; the rows keep the API's values for filters and tests.
        device = page.locator("#panel-devices .row[data-property=device]").first
        assert device.get_attribute("data-value") in ("desktop", "mobile", "tablet")
        expect(device.locator(".label-text")).to_have_text(re.compile(r"^(Desktop|Mobile|Tablet)$"))
        path = tmp_path / f"dashboard-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        page.screenshot(path=str(tmp_path / f"dashboard-{name}-top.png"))  # first screen
        if os.environ.get("AVOCET_UPDATE_SCREENSHOTS") == "1":
            out = ROOT / "docs" / "screenshots"
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / f"dashboard-{name}.png")
    finally:
        page.context.close()


def revenue_by_hand(visits: list[data.Visit], since: datetime) -> list[dict[str, Any]]:
    """Each currency's revenue of the events at or after `since`, from the generated visits
    (not from the app): largest first, as the dashboard lists them."""
    sums: dict[str, Decimal] = {}
    for v in visits:
        for index, (amount, currency) in v.revenue.items():
            if v.start + timedelta(seconds=v.events[index][0]) >= since:
                sums[currency] = sums.get(currency, Decimal(0)) + Decimal(amount)
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])
    return [{"currency": c, "amount": float(a)} for c, a in ranked]


def test_goals_show_revenue_per_currency_when_goals_have_revenue(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    since = data.day_start(datetime.now(UTC), 29)  # the 30-day period, UTC site
    expected = revenue_by_hand(demo.visits, since)
    assert len(expected) == 3, expected  # euros, dollars and pounds: never one sum
    page = open_dashboard(browser, demo, 1280, "light")
    try:
        purchase = page.locator('#panel-goals .row[data-value="Purchase"]')
        cell = purchase.locator(".money")
        assert json.loads(cell.get_attribute("data-revenue") or "[]") == expected
        shown = " · ".join(f"{SYMBOL[r['currency']]}{r['amount']:,.2f}" for r in expected)
        expect(cell).to_have_text(shown)
        no_revenue = page.locator('#panel-goals .row[data-value="Signup"] .money')
        expect(no_revenue).to_have_text("—")
        # The details view too, and its CSV: a column per currency, never one sum.
        page.locator("#panel-goals .foot-button", has_text="Details").click()
        sheet = page.locator("dialog.details-sheet")
        expect(sheet.locator("h2")).to_have_text("Goals")
        money = sheet.locator('tr[data-value="Purchase"] .money')
        expect(money).to_have_text(shown)
        with page.expect_download() as download:
            sheet.get_by_role("button", name="CSV").click()
        csv = Path(download.value.path()).read_text().splitlines()
        currencies = sorted(r["currency"] for r in expected)
        assert csv[0] == "goal,visitors,events,conversion_rate," + ",".join(
            f"revenue_{c}" for c in currencies
        )
        by_currency = {r["currency"]: r["amount"] for r in expected}
        purchase_line = next(line for line in csv if line.startswith("Purchase,"))
        amounts = [float(v) for v in purchase_line.split(",")[-3:]]
        assert amounts == [by_currency[c] for c in currencies]
        page.keyboard.press("Escape")
        # Filtering by the goal: a Revenue tile per currency, next to the conversions.
        purchase.locator(".row-label").click()
        expect(page).to_have_url(re.compile(r"[?&]goal=Purchase"))
        tiles = page.locator('#top-stats [data-metric="revenue"]')
        expect(tiles).to_have_count(len(expected))
        found = [
            {"currency": t.get_attribute("data-currency"), "amount": float(value)}
            for t in tiles.all()
            if (value := t.get_attribute("data-value")) is not None
        ]
        assert found == expected
        expect(tiles.first.locator(".stat-value")).to_have_text(shown.split(" · ")[0])
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / "goal-filtered.png"))
    finally:
        page.context.close()


SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£"}


def test_open_menus_and_dialogs_screenshotted_when_opened(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    """The date picker, its calendar, the filter editor, a details view and the API view,
    each screenshotted into the temp dir (to be looked at, not published)."""
    page = open_dashboard(browser, demo, 1280, "light")
    try:
        page.locator("#period-button").click()
        expect(page.locator("#period-menu")).to_be_visible()
        page.screenshot(path=str(tmp_path / "period-menu.png"))
        page.keyboard.press("c")
        expect(page.locator("#period-menu .calendar")).to_be_visible()
        page.screenshot(path=str(tmp_path / "calendar.png"))
        page.keyboard.press("Escape")
        page.locator("#filter-button").click()
        expect(page.locator("#filter-menu")).to_be_visible()
        page.screenshot(path=str(tmp_path / "filter-editor.png"))
        page.keyboard.press("Escape")
        page.locator("#panel-goals .foot-button", has_text="Details").click()
        expect(page.locator("dialog.details-sheet tbody tr").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "goal-details.png"))
        page.keyboard.press("Escape")
        page.locator("#panel-pages .foot-button", has_text="API").click()
        expect(page.locator("#api-native")).to_be_visible()
        page.screenshot(path=str(tmp_path / "api.png"))
    finally:
        page.context.close()
