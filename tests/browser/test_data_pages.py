"""The Data and Exclusions pages (#21) in Chromium: a rule added, an error shown, the reset
form; screenshots at 1280 px light and dark and 375 px (no sideways scroll), axe-core with no
serious or critical violation. And "exclude my own visits": the settings page's button opens
the owner's site with #avocet_ignore=true and the tracker sends nothing from then on; the undo
link counts again; the console lines offered by hand do the same."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.accounts_fixtures import PASSWORD, auth_settings
from tests.browser.conftest import DESKTOP_UA, SiteServer
from tests.browser.test_dashboard_a11y import serious_violations
from tests.browser.test_tracker import (
    collect_requests,
    events,
    html,
    ignored,
    names,
    snippet,
    wait_tracker,
)
from tests.conftest import LiveServer, start_live_server, stop_live_server

# Set to a folder to keep the screenshots for looking at them.
SHOTS = os.environ.get("AVOCET_SHOTS_DIR", "")


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


def _first_owner(page: Page, url: str, domain: str) -> str:
    """Sets up the first user and a site through the UI; returns the site id."""
    page.goto(url + "/")
    page.get_by_label("Email").fill("me@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Domain").fill(domain)
    page.get_by_role("button", name="Add site").click()
    return page.url.split("/")[-2]


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (1280, "dark"), (375, "light")])
def test_data_and_exclusion_pages_look_right_and_pass_axe(
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
        page.goto(f"{server.url}/ui/sites/{site_id}/exclusions")
        page.get_by_label("Exclude", exact=True).select_option("ip")
        page.get_by_label("Value").fill("10.0.0.300")
        page.get_by_role("button", name="Add rule").click()
        expect(page.locator("#e-value")).to_have_text(
            "Not an IP address or CIDR range: '10.0.0.300' (e.g. 203.0.113.7,"
            " 203.0.113.0/24, 2001:db8::/32)."
        )
        page.get_by_label("Value").fill("203.0.113.0/24")
        page.get_by_role("button", name="Add rule").click()
        page.get_by_label("Exclude", exact=True).select_option("page")
        page.get_by_label("Value").fill("/admin/*")
        page.get_by_role("button", name="Add rule").click()
        expect(page.locator("#rules tbody tr")).to_have_count(2)
        expect(page.get_by_role("link", name="Exclusions")).to_have_attribute(
            "aria-current", "page"
        )
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"exclusions-{width}-{scheme}.png"), full_page=True)

        page.get_by_role("link", name="Data").click()
        page.get_by_label("Raw events: days kept").fill("120")
        page.get_by_label("Everything: days kept").fill("60")
        page.get_by_role("button", name="Save retention").click()
        expect(page.locator("#e-raw_retention_days")).to_have_text(
            "Can't exceed retention_days (120 > 60): raw events are part of what is kept."
        )
        page.get_by_label("Only these days").check()
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"data-{width}-{scheme}.png"), full_page=True)
        page.goto(f"{server.url}/ui/sites/{site_id}/settings")
        expect(page.locator("#ignore-on")).to_have_text("localStorage.avocet_ignore = 'true'")
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"settings-{width}-{scheme}.png"), full_page=True)
    finally:
        context.close()
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)


def test_own_visits_excluded_by_the_line_the_settings_page_offers(
    server: LiveServer, site: SiteServer, browser: Browser
) -> None:
    owner = browser.new_context(user_agent=DESKTOP_UA)
    settings = owner.new_page()
    site_id = _first_owner(settings, server.url, "shop.test")
    url = site.add("/", html(snippet(server, site_id), "<p>hello</p>"))
    # What the owner copies from the settings page (read from the page itself).
    settings.goto(f"{server.url}/ui/sites/{site_id}/settings")
    on = settings.locator("#ignore-on").text_content()
    off = settings.locator("#ignore-off").text_content()
    assert (on, off) == (
        "localStorage.avocet_ignore = 'true'",
        "localStorage.removeItem('avocet_ignore')",
    )
    assert on is not None and off is not None
    # The owner's browser on their own site: counted, then the console line and a reload.
    page = owner.new_page()
    page.goto(url)
    wait_tracker(page)
    assert names(events(server, site_id, 1)) == ["pageview"]
    page.evaluate(on)
    sent = collect_requests(page)
    warnings = ignored(page)
    page.reload()
    wait_tracker(page)
    page.evaluate("avocet('Signup')")
    page.wait_for_timeout(800)
    assert [r.url for r in sent] == []
    assert warnings[:2] == [
        "Avocet ignores pageview: localStorage opt-out",
        "Avocet ignores Signup: localStorage opt-out",
    ]
    # Still only the first pageview (and its engagement, sent as that page was left).
    assert names(events(server, site_id, 2)) == ["pageview", "engagement"]
    page.evaluate(off)
    page.reload()
    wait_tracker(page)
    assert names(events(server, site_id, 3)) == ["pageview", "engagement", "pageview"]
    owner.close()


def test_own_visits_excluded_in_one_click_from_the_settings_page(
    server: LiveServer, site: SiteServer, browser: Browser
) -> None:
    owner = browser.new_context(user_agent=DESKTOP_UA)
    settings = owner.new_page()
    site_id = _first_owner(settings, server.url, "shop.test")
    url = site.add("/", html(snippet(server, site_id), "<p>hello</p>"))
    # The link goes to https://shop.test/, the site's own origin; here that origin (no TLS in
    # tests) redirects to the fixture site, as a site moving visitors to its canonical URL
    # would. A redirect without a fragment keeps the link's, which the tracker reads.
    asked: list[str] = []

    def canonical(route: Route) -> None:
        asked.append(route.request.url)
        route.fulfill(status=302, headers={"Location": url})

    owner.route("https://shop.test/**", canonical)
    settings.goto(f"{server.url}/ui/sites/{site_id}/settings")
    expect(settings.locator("#opt-out-link")).to_have_text("https://shop.test/#avocet_ignore=true")
    assert "<svg" in (settings.locator(".opt-out .qr").inner_html())
    with owner.expect_page() as opened:
        settings.get_by_role("link", name="Exclude this browser").click()
    page = opened.value
    wait_tracker(page)
    assert asked == ["https://shop.test/"]  # the fragment never leaves the browser
    assert page.url == url + "#avocet_ignore=true"
    # From now on the owner's visits send nothing.
    sent = collect_requests(page)
    warnings = ignored(page)
    page.goto(site.add("/pricing", html(snippet(server, site_id))))
    wait_tracker(page)
    page.evaluate("avocet('Signup')")
    page.wait_for_timeout(800)
    assert [r.url for r in sent] == []
    assert warnings[:2] == [
        "Avocet ignores pageview: localStorage opt-out",
        "Avocet ignores Signup: localStorage opt-out",
    ]
    assert server.rows("SELECT name FROM events WHERE site_id = ?", [site_id]) == []
    # "Count this browser again" undoes it in one click too.
    with owner.expect_page() as opened:
        settings.get_by_role("link", name="Count this browser again").click()
    wait_tracker(opened.value)
    assert [r["pathname"] for r in events(server, site_id, 1)] == ["/"]
    owner.close()
