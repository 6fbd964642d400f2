"""The settings UI clicked through in Debian's chromium, against the live app.

One journey, as a new user would take it: first-run setup, sign out and in, add a site,
copy its snippet, load a page of the site that carries it (served by the fixture site on
another origin) and watch the pageview arrive in "verify installation", create an API key
and use it, revoke it, add a goal, sign out. Every page is screenshotted into the test's
temp dir; with AVOCET_UPDATE_SCREENSHOTS=1 the sites list and the verify page are copied to
docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.accounts_fixtures import auth_settings
from tests.browser.conftest import DESKTOP_UA, ROOT, SiteServer
from tests.conftest import LiveServer, start_live_server, stop_live_server

EMAIL = "admin@example.com"
PASSWORD = "a long enough password"


@pytest.fixture
def ui_server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    """The live app with cheap password hashes (after `playwright`: skip before starting)."""
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


@pytest.fixture
def ui_context(browser: Browser, ui_server: LiveServer) -> Iterator[BrowserContext]:
    context = browser.new_context(
        user_agent=DESKTOP_UA,
        viewport={"width": 1280, "height": 800},
        timezone_id="Europe/Berlin",
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_server.url)
    yield context
    context.close()


class Shots:
    """Full-page screenshots, numbered in the order taken."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: dict[str, Path] = {}

    def take(self, page: Page, name: str) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken[name] = path

    def publish(self, **targets: str) -> None:
        if os.environ.get("AVOCET_UPDATE_SCREENSHOTS") != "1":
            return
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        for name, target in targets.items():
            shutil.copyfile(self.taken[name], out / target)


def sign_in(page: Page) -> None:
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_settings_journey_when_new_user_installs_tracker(
    ui_server: LiveServer, ui_context: BrowserContext, site: SiteServer, tmp_path: Path
) -> None:
    live = ui_server
    shots = Shots(tmp_path / "screenshots")
    page = ui_context.new_page()

    # First run: / leads to "create the admin account".
    page.goto(live.url + "/")
    expect(page).to_have_url(live.url + "/ui/setup")
    expect(page.get_by_role("heading", name="Create the admin account")).to_be_visible()
    shots.take(page, "setup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill("something else entirely")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(live.url + "/ui/sites/new")

    # Sign out, then in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    shots.take(page, "login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.", exact=True)).to_be_visible()
    sign_in(page)
    expect(page).to_have_url(live.url + "/ui/sites")
    expect(page.get_by_text("No sites yet.")).to_be_visible()

    # Add a site: the browser's time zone is preselected.
    page.get_by_role("link", name="Add a site").click()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    shots.take(page, "site-new")
    page.get_by_label("Domain").fill("https://www.shop.test/")
    page.get_by_role("button", name="Add site").click()
    expect(page).to_have_url(re.compile(r"/ui/sites/[a-z0-9]+/install$"))
    site_id = page.url.split("/")[-2]
    stored = live.services.sites.by_id(site_id)
    assert stored is not None
    assert (stored.domain, stored.timezone) == ("shop.test", "Europe/Berlin")

    # The options change the snippet; copy it.
    snippet = page.locator("#snippet")
    page.get_by_label("Hash-based routing").check()
    expect(snippet).to_contain_text("data-hash")
    page.get_by_label("Custom download file types").check()
    page.get_by_label("Extensions, comma-separated").fill("pdf, dmg")
    expect(snippet).to_contain_text('data-file-types="pdf,dmg"')
    page.get_by_label("Hash-based routing").uncheck()
    page.get_by_label("Custom download file types").uncheck()
    expected = f'<script defer data-site="{site_id}" src="{live.url}/script.js"></script>'
    expect(snippet).to_have_text(expected)
    page.get_by_role("button", name="Copy snippet").click()
    expect(page.get_by_text("Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == expected
    expect(page.get_by_text("Waiting for the first event")).to_be_visible()

    # A page of the site carries the copied snippet (and the switches a test browser needs).
    tag = copied.replace("<script defer", "<script defer data-allow-local data-allow-webdriver")
    url = site.add("/landing", f"<!doctype html><html><head>{tag}</head><body>hi</body></html>")
    visitor = ui_context.new_page()
    visitor.goto(url)
    visitor.close()

    rows = page.locator("#recent tbody tr")
    expect(rows.first).to_contain_text("pageview", timeout=10_000)
    expect(rows.first).to_contain_text("/landing")
    expect(page.get_by_text("Installed: events are arriving")).to_be_visible()
    shots.take(page, "verify")

    page.goto(live.url + "/ui/sites")
    expect(page.get_by_role("link", name="shop.test")).to_be_visible()
    shots.take(page, "sites")

    # An API key: created, shown once, works; revoked, refused.
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("Reporting")
    page.get_by_label("Site", exact=True).select_option(site_id)
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-token").inner_text().strip()
    assert re.fullmatch(r"av_live_[0-9a-f]{12}_[0-9A-Za-z]{32}", token)
    expect(page.locator("#keys")).to_contain_text(token.rsplit("_", 1)[0] + "_****")
    expect(page.locator("#keys")).not_to_contain_text(token)
    shots.take(page, "keys")
    aggregate = f"{live.url}/api/v1/stats/aggregate?site_id={site_id}"
    headers = {"Authorization": f"Bearer {token}", "User-Agent": DESKTOP_UA}
    answer = httpx.get(aggregate, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    page.get_by_role("button", name="Revoke key Reporting").click()
    expect(page.locator("#keys")).to_contain_text("Revoked")
    assert httpx.get(aggregate, headers=headers, timeout=10).status_code == 401

    # A goal.
    page.goto(f"{live.url}/ui/sites/{site_id}/goals")
    page.get_by_role("button", name="Add goal").click()
    expect(page.get_by_text("Enter an event name or a page path.")).to_be_visible()
    page.get_by_label("Event name or page path").fill("Signup")
    page.get_by_role("button", name="Add goal").click()
    expect(page.get_by_role("cell", name="Signup").first).to_be_visible()
    shots.take(page, "goals")

    page.goto(f"{live.url}/ui/sites/{site_id}/members")
    shots.take(page, "members")
    page.goto(f"{live.url}/ui/account")
    shots.take(page, "account")

    # Sign out: the pages need signing in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(live.url + "/ui/sites")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    shots.publish(sites="sites.png", verify="verify.png")


def test_sites_list_fits_phone_when_viewport_narrow(
    ui_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 375, "height": 740}, is_mobile=True
    )
    try:
        page = context.new_page()
        page.goto(ui_server.url + "/")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_label("Domain").fill("a-rather-long-subdomain.example-shop.test")
        page.get_by_role("button", name="Add site").click()
        expect(page.locator("#snippet")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        Shots(tmp_path / "screenshots").take(page, "install-phone")
        assert overflow <= 0
    finally:
        context.close()
