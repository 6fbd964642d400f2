"""The dashboard in Debian's chromium, on a dataset loaded through the real ingest with
figures counted by hand (tests/browser/dashboard_data.py, `small_visits`).

The 30-day period (UTC site) holds seven visits by seven visitors:
  today      V1 Google/Chrome/GB  "/" "/pricing" + Signup (span 90 s)
             V2 Google/iPhone/US  "/blog/a"                (bounce)
             V3 HN/Firefox/DE     "/"                      (bounce)
             V4 Direct/Chrome/US  "/docs" "/pricing" "/"   (span 150 s)
  yesterday  V5 Google/Chrome/GB  "/"                      (bounce)
             V6 blog/iPhone/DE    "/blog/b" "/"            (span 40 s)
  8 days ago V7 HN/Chrome/US      "/"                      (bounce)
and the previous 30 days two: V8 Google/Firefox/GB "/" "/docs" (100 s), V9 Direct "/pricing".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.auth.passwords import Passwords
from app.storage.accounts import create_user, set_role
from app.storage.goals import add_goal
from tests.accounts_fixtures import FAST_AUTH, PASSWORD, auth_settings
from tests.browser import dashboard_data as data
from tests.browser.conftest import DESKTOP_UA
from tests.conftest import CHROME_UA, LiveServer, start_live_server, stop_live_server

OWNER = "owner@example.com"
VIEWER = "viewer@example.com"

# 30 days, by hand from the table above.
THIRTY = {
    "visitors": 7,
    "visits": 7,
    "pageviews": 11,  # 2 + 1 + 1 + 3 + 1 + 2 + 1
    "views_per_visit": 1.57,  # 11 / 7
    "bounce_rate": 57.1,  # V2 V3 V5 V7: 4 / 7
    "visit_duration": 40,  # (90 + 150 + 40) / 7
}
PREVIOUS = {
    "visitors": 2,
    "visits": 2,
    "pageviews": 3,
    "views_per_visit": 1.5,
    "bounce_rate": 50.0,
    "visit_duration": 50,
}
GOOGLE = {
    "visitors": 3,
    "visits": 3,
    "pageviews": 4,
    "views_per_visit": 1.33,
    "bounce_rate": 66.7,
    "visit_duration": 30,
}  # V1 V2 V5: 90 / 3 s


class Dash:
    def __init__(self, live: LiveServer, site_id: str) -> None:
        self.live, self.site_id = live, site_id

    @property
    def url(self) -> str:
        return f"{self.live.url}/ui/sites/{self.site_id}"

    def api(self, endpoint: str, **params: str) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.live.url}/api/v1/stats/{endpoint}",
            params={"site_id": self.site_id, **params},
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": CHROME_UA},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    token = ""


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory, playwright: object) -> Iterator[Dash]:
    now = datetime.now(UTC)
    since_midnight = now - now.replace(hour=0, minute=0, second=0, microsecond=0)
    if since_midnight < timedelta(minutes=12):  # today's visits must be > 5 min old
        time.sleep((timedelta(minutes=12) - since_midnight).total_seconds())
        now = datetime.now(UTC)
    live = start_live_server(auth_settings(tmp_path_factory.mktemp("dash"), run_jobs=False))
    try:
        meta = live.services.meta
        hashed = Passwords(FAST_AUTH).hash_sync(PASSWORD)
        owner = create_user(meta, OWNER, hashed)
        viewer = create_user(meta, VIEWER, hashed)
        site = meta.add_site("shop.test", timezone="UTC")
        set_role(meta, site.id, owner.id, "owner")
        set_role(meta, site.id, viewer.id, "viewer")
        add_goal(meta, site.id, "event", "Signup", "Signup")
        live.services.sites.reload()
        data.load(live, site.id, data.small_visits(now))
        found = Dash(live, site.id)
        from app.auth.keys import create_api_key

        found.token = create_api_key(
            meta,
            user_id=owner.id,
            site_id=site.id,
            scopes=("stats:read",),
            name="t",
            expires_at=None,
        )[1]
        yield found
    finally:
        _sessions.clear()
        stop_live_server(live)


_sessions: dict[str, Any] = {}


def signed_in(browser: Browser, dash: Dash, email: str = OWNER, **options: Any) -> BrowserContext:
    """A context with `email`'s session (signed in once per module: sign-ins are limited)."""
    if email not in _sessions:
        first = browser.new_context(user_agent=DESKTOP_UA)
        answer = first.request.post(
            dash.live.url + "/api/v1/auth/login",
            data={"email": email, "password": PASSWORD},
            headers={"Origin": dash.live.url},
        )
        assert answer.ok, answer.text()
        _sessions[email] = first.storage_state()
        first.close()
    return browser.new_context(
        user_agent=DESKTOP_UA,
        viewport={"width": 1280, "height": 900},
        storage_state=_sessions[email],
        **options,
    )


@pytest.fixture
def page(browser: Browser, dash: Dash) -> Iterator[Page]:
    context = signed_in(browser, dash)
    errors: list[str] = []
    p = context.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors


def stat(page: Page, metric: str) -> Any:
    tile = page.locator(f'#top-stats [data-metric="{metric}"]')
    expect(tile).to_have_count(1)
    return json.loads(tile.get_attribute("data-value") or "null")


def stats(page: Page, metrics: dict[str, Any]) -> dict[str, Any]:
    return {m: stat(page, m) for m in metrics}


def expect_stat(page: Page, metric: str, value: object) -> None:
    expect(page.locator(f'#top-stats [data-metric="{metric}"]')).to_have_attribute(
        "data-value", str(value)
    )


def rows(page: Page, panel: str, count: int = 3) -> list[tuple[str, str, int]]:
    found = page.locator(f"#panel-{panel} .row[data-property]")
    expect(found.first).to_be_visible()
    out = []
    for i in range(min(count, found.count())):
        row = found.nth(i)
        out.append(
            (
                row.get_attribute("data-property") or "",
                row.get_attribute("data-value") or "",
                int(row.get_attribute("data-visitors") or "0"),
            )
        )
    return out


def api_rows(dash: Dash, prop: str, count: int = 3, **filters: str) -> list[tuple[str, str, int]]:
    body = dash.api("breakdown", property=prop, metrics="visitors", limit="9", **filters)
    return [(prop, r["value"] or "", r["visitors"]) for r in body["results"][:count]]


def tab(page: Page, panel: str, name: str) -> None:
    page.locator(f'#panel-{panel} .tab[data-tab="{name}"]').click()


def test_numbers_equal_api_and_hand_counts_when_loaded(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    expect_stat(page, "visitors", 7)
    assert stats(page, THIRTY) == THIRTY
    api = dash.api("aggregate", metrics=",".join(THIRTY), compare="previous_period")
    assert api["metrics"] == THIRTY
    assert api["comparison"]["metrics"] == PREVIOUS
    # The graph: one point per day, today last.
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-points", re.compile(r"\["))
    points = json.loads(graph.get_attribute("data-points") or "[]")
    series = dash.api("timeseries", metrics="visitors", interval="day")["results"]
    assert points == [p["visitors"] for p in series]
    assert len(points) == 30
    assert (points[-1], points[-2], points[-9], sum(points)) == (4, 2, 1, 7)
    # First rows of every panel.
    tab(page, "sources", "sources")
    assert rows(page, "sources", 2) == [("source", "Google", 3), ("source", "Hacker News", 2)]
    assert rows(page, "sources", 2) == api_rows(dash, "source", 2)
    tab(page, "sources", "channels")
    expect(page.locator("#panel-sources .row[data-property=channel]").first).to_be_visible()
    assert rows(page, "sources", 2) == [
        ("channel", "Organic Search", 3),
        ("channel", "Organic Social", 2),
    ]
    assert rows(page, "pages", 2) == [("page", "/", 6), ("page", "/pricing", 2)]
    assert rows(page, "pages", 2) == api_rows(dash, "page", 2)
    tab(page, "pages", "entry")
    expect(page.locator("#panel-pages .row[data-property=entry_page]").first).to_be_visible()
    assert rows(page, "pages", 1) == [("entry_page", "/", 4)] == api_rows(dash, "entry_page", 1)
    tab(page, "pages", "exit")
    expect(page.locator("#panel-pages .row[data-property=exit_page]").first).to_be_visible()
    assert rows(page, "pages", 1) == [("exit_page", "/", 5)] == api_rows(dash, "exit_page", 1)
    tab(page, "locations", "countries")
    assert rows(page, "locations", 1) == [("country", "US", 3)] == api_rows(dash, "country", 1)
    assert rows(page, "devices", 2) == [("device", "desktop", 5), ("device", "mobile", 2)]
    tab(page, "devices", "browser")
    expect(page.locator("#panel-devices .row[data-property=browser]").first).to_be_visible()
    assert rows(page, "devices", 3) == [
        ("browser", "Chrome", 4),
        ("browser", "Safari", 2),
        ("browser", "Firefox", 1),
    ]
    tab(page, "devices", "os")
    expect(page.locator("#panel-devices .row[data-property=os]").first).to_be_visible()
    assert rows(page, "devices", 1) == [("os", "macOS", 4)] == api_rows(dash, "os", 1)
    # Goals: Signup converted one visitor of seven.
    tab(page, "goals", "goals")
    goal = page.locator("#panel-goals .row[data-property=goal]").first
    expect(goal).to_have_attribute("data-value", "Signup")
    expect(goal).to_have_attribute("data-visitors", "1")
    expect(goal).to_contain_text("14.3%")  # 1 / 7; the API says 14.29
    assert dash.api("aggregate", metrics="conversion_rate", goal="Signup")["metrics"] == {
        "conversion_rate": 14.29
    }


def test_source_row_filters_every_panel_when_clicked(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    tab(page, "sources", "sources")
    expect_stat(page, "visitors", 7)
    page.locator('#panel-sources .row[data-value="Google"] .row-label').click()
    expect(page).to_have_url(re.compile(r"[?&]source=Google(&|$)"))
    expect(page.locator('#filters .chip[data-key="source"]')).to_contain_text("Google")
    expect_stat(page, "visitors", 3)
    assert stats(page, GOOGLE) == GOOGLE
    assert dash.api("aggregate", metrics=",".join(GOOGLE), source="Google")["metrics"] == GOOGLE
    # The Sources tab drills down to Google's referrers.
    assert rows(page, "sources", 1) == [("referrer", "google.com", 3)]
    expect(page.locator("#panel-pages .row").nth(1)).to_have_attribute("data-visitors", "2")
    assert (
        rows(page, "pages", 1) == [("page", "/", 2)] == api_rows(dash, "page", 1, source="Google")
    )
    tab(page, "locations", "countries")
    assert rows(page, "locations", 2) == [("country", "GB", 2), ("country", "US", 1)]
    # Removing the chip restores the unfiltered answers.
    page.locator('#filters .chip[data-key="source"] .chip-remove').click()
    expect(page).not_to_have_url(re.compile(r"source="))
    expect_stat(page, "visitors", 7)
    assert rows(page, "locations", 1) == [("country", "US", 3)]
    # Back and Forward replay the filter history.
    page.go_back()
    expect(page).to_have_url(re.compile(r"[?&]source=Google"))
    expect_stat(page, "visitors", 3)
    expect(page.locator('#filters .chip[data-key="source"]')).to_have_count(1)
    page.go_forward()
    expect_stat(page, "visitors", 7)
    expect(page.locator("#filters .chip")).to_have_count(0)


def test_filter_editor_excludes_with_is_not(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    expect_stat(page, "visitors", 7)
    page.locator("#filter-button").click()
    page.locator("#filter-prop").select_option("source")
    page.locator("#filter-op").select_option("is_not")
    page.locator("#filter-value").fill("Google")
    page.locator("#filter-apply").click()
    expect(page).to_have_url(re.compile(r"source!=Google"))
    expect_stat(page, "visitors", 4)  # V3 V4 V6 V7
    expect_stat(page, "pageviews", 7)  # 1 + 3 + 2 + 1


@pytest.mark.parametrize(
    ("key", "period", "visitors"),
    [
        ("d", "today", 4),
        ("e", "yesterday", 2),
        ("w", "7d", 6),
        ("t", "30d", 7),
        ("n", "90d", 9),
        ("l", "12m", 9),
        ("a", "all", 9),
        ("h", "24h", None),
        ("m", "mtd", None),
        ("p", "month", None),
        ("y", "ytd", None),
        ("r", "realtime", None),
    ],
)
def test_shortcut_changes_the_period_when_pressed(
    page: Page, dash: Dash, key: str, period: str, visitors: int | None
) -> None:
    page.goto(dash.url + ("?period=7d" if period == "30d" else ""))
    expect(page.locator("#top-stats [data-metric]").first).to_be_visible()
    page.keyboard.press(key)
    if period == "30d":
        expect(page).not_to_have_url(re.compile(r"period="))
    else:
        expect(page).to_have_url(re.compile(rf"[?&]period={period}(&|$)"))
    if visitors is not None:
        expect_stat(page, "visitors", visitors)
        api = dash.api("aggregate", period=period)["metrics"]["visitors"]
        assert api == visitors


def test_date_picker_picks_presets_custom_ranges_and_steps(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    expect_stat(page, "visitors", 7)
    page.locator("#period-button").click()
    page.locator('#period-menu [data-period="7d"]').click()
    expect(page).to_have_url(re.compile(r"period=7d"))
    expect_stat(page, "visitors", 6)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    page.keyboard.press("c")
    page.locator("#custom-from").fill(yesterday)
    page.locator("#custom-to").fill(yesterday)
    page.locator("#custom-apply").click()
    expect(page).to_have_url(re.compile(rf"period=custom&from={yesterday}&to={yesterday}"))
    expect_stat(page, "visitors", 2)
    page.keyboard.press("ArrowRight")  # to today
    expect_stat(page, "visitors", 4)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # two days ago: nobody
    expect_stat(page, "visitors", 0)
    # The shortcuts are listed in the help popover.
    page.locator("#shortcuts-button").click()
    help_text = page.locator("#shortcuts").inner_text()
    for label in ("Today", "Yesterday", "Last 7 days", "Last 30 days", "Custom range", "Compare"):
        assert label in help_text


def test_compare_shows_the_previous_period_when_switched_on(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    expect_stat(page, "visitors", 7)
    page.locator("#compare-select").select_option("previous_period")
    expect(page).to_have_url(re.compile(r"compare=previous_period"))
    shown = page.locator("#top-stats .stat-cmp")
    expect(shown).to_have_count(len(PREVIOUS))
    for metric, value in PREVIOUS.items():
        cmp = page.locator(f'#top-stats [data-metric="{metric}"] .stat-cmp')
        assert json.loads(cmp.get_attribute("data-compare-value") or "null") == value
    expect(page.locator('#top-stats [data-metric="visitors"] .change')).to_contain_text("250%")
    page.keyboard.press("x")
    expect(page).not_to_have_url(re.compile(r"compare="))


def test_viewer_sees_the_dashboard_but_no_settings(browser: Browser, dash: Dash) -> None:
    context = signed_in(browser, dash, VIEWER)
    try:
        page = context.new_page()
        page.goto(dash.url)
        expect(page.locator('#top-stats [data-metric="visitors"]')).to_be_visible()
        site_nav = page.get_by_role("navigation", name="Site")
        expect(site_nav.get_by_role("link", name="Dashboard")).to_be_visible()
        for name in ("Settings", "Install", "Goals", "People"):
            expect(site_nav.get_by_role("link", name=name)).to_have_count(0)
    finally:
        context.close()


def test_details_and_api_views_when_opened(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    page.locator("#panel-pages .foot-button", has_text="Details").click()
    dialog = page.locator("dialog.details-sheet")
    expect(dialog.locator("tbody tr").first).to_have_attribute("data-value", "/")
    expect(dialog.locator("tbody tr")).to_have_count(5)
    dialog.get_by_role("button", name=re.compile("Pageviews")).click()
    expect(dialog.locator("thead th[aria-sort=descending]")).to_contain_text("Pageviews")
    dialog.get_by_role("searchbox").fill("blog")
    expect(dialog.locator("tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        dialog.get_by_role("button", name="CSV").click()
    csv = Path(download.value.path()).read_text()
    assert csv.splitlines()[0].startswith("page,visitors,pageviews")
    assert len(csv.splitlines()) == 3  # header + /blog/a + /blog/b
    page.keyboard.press("Escape")
    page.locator("#panel-pages .foot-button", has_text="API").click()
    native = page.locator("#api-native").inner_text()
    assert native.startswith(f"/api/v1/stats/breakdown?site_id={dash.site_id}&period=30d")
    assert "property=page" in native
    body = json.loads(page.locator("#api-v2").inner_text())
    assert body["dimensions"] == ["event:page"]
    answer = httpx.post(
        f"{dash.live.url}/api/v2/query",
        json=body,
        headers={"Authorization": f"Bearer {dash.token}", "User-Agent": CHROME_UA},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0] == {
        "metrics": [6, 6],
        "dimensions": ["/"],
    }  # "/": 6 visitors, 1 view each


# Last: the event it posts changes today's figures.
def test_realtime_count_moves_when_an_event_arrives(page: Page, dash: Dash) -> None:
    page.goto(dash.url)
    live = page.locator("#current-visitors")
    expect(live).to_have_attribute("data-value", "0")
    answer = httpx.post(
        f"{dash.live.url}/api/event",
        json={"name": "pageview", "url": "https://shop.test/now", "domain": "shop.test"},
        headers={"User-Agent": CHROME_UA, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    expect(live).to_have_attribute("data-value", "1", timeout=15_000)
    assert dash.api("realtime", minutes="5")["current_visitors"] == 1
