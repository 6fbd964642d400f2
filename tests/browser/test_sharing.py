"""Share links in Debian's chromium: an owner creates one on the Sharing page and copies it;
a signed-out browser opens it, gives its password and gets the read-only dashboard; the
embed shows inside a page of an allowed origin and stays empty on any other.

Screenshots go to the test's temp dir (1280 px light and dark, 375 px phone); with
AVOCET_UPDATE_SCREENSHOTS=1 the sharing page is copied to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from tests.accounts_fixtures import PASSWORD, World, auth_settings, running_world
from tests.browser.conftest import DESKTOP_UA, ROOT, SiteServer
from tests.conftest import CHROME_UA

SHARE_PASSWORD = "open sesame 42"
# Today's pageviews of shop.test, minutes before now: 3 visitors, 4 pageviews.
VISITS = [("10.0.0.1", "/blog/one", 19), ("10.0.0.1", "/blog/two", 18)]
VISITS += [("10.0.0.2", "/pricing", 15), ("10.0.0.3", "/blog/one", 10)]


@pytest.fixture
def world(tmp_path: Path, playwright: object) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, run_jobs=False)) as found:
        yield found


def _seed(world: World, site_id: str) -> None:
    svc = world.live.services
    site = svc.sites.by_id(site_id)
    assert site is not None
    now = datetime.now(UTC)
    rows = []
    for ip, path, minutes_ago in VISITS:
        hit = Hit(name="pageview", url=f"https://{site.domain}{path}", site_id=site_id)
        ts = int((now - timedelta(minutes=minutes_ago)).timestamp() * 1e6)
        row = svc.ingest.build(hit, site, Client(ip, CHROME_UA), ts)
        assert not isinstance(row, Drop), row
        rows.append(row)
    svc.events.append(rows)


def _context(
    browser: Browser, width: int = 1280, dark: bool = False, axe: bool = False
) -> BrowserContext:
    return browser.new_context(
        # axe-core's script is injected: only then the page's CSP is bypassed.
        bypass_csp=axe,
        user_agent=DESKTOP_UA,
        viewport={"width": width, "height": 900},
        color_scheme="dark" if dark else "light",
        timezone_id="UTC",
    )


def _sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/ui/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/ui/login"))


def _shoot(page: Page, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def _axe_serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page (the context bypasses CSP
    so the script can be injected)."""
    if not AXE.exists():
        pytest.skip("LOUD SKIP: node_modules/axe-core is missing; run npm ci")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run()).violations")
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def test_owner_shares_a_password_link_when_a_signed_out_browser_opens_it(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base = world.live.url
    owner = world.user("owner@example.com")
    site_id = world.site("shop.test", owner)
    _seed(world, site_id)
    shots = tmp_path / "shots"

    context = _context(browser, axe=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    _sign_in(page, base, owner.email)
    page.goto(f"{base}/ui/sites/{site_id}/sharing")
    expect(page.get_by_role("heading", name="Sharing")).to_be_visible()
    expect(page.get_by_text("No share links yet.")).to_be_visible()
    page.get_by_label("Name").fill("Investors")
    page.get_by_label("Password (optional)").fill(SHARE_PASSWORD)
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_text("Link created.")).to_be_visible()
    link = page.locator(".share-url").first
    url = link.inner_text()
    assert re.fullmatch(re.escape(base) + r"/share/[\w-]{20,}", url), url
    page.get_by_role("button", name="Copy link").click()
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.locator("summary", has_text="Embed code").click()
    expect(page.locator("pre code").first).to_contain_text(f'<iframe src="{url}?embed=true"')
    light = _shoot(page, shots, "sharing-1280-light")
    assert _axe_serious(page) == []
    context.close()

    for name, width, dark in (("sharing-1280-dark", 1280, True), ("sharing-375", 375, False)):
        other = _context(browser, width, dark, axe=True)
        view = other.new_page()
        _sign_in(view, base, owner.email)
        view.goto(f"{base}/ui/sites/{site_id}/sharing")
        view.locator("summary", has_text="Embed code").click()
        _no_sideways_scroll(view)
        _shoot(view, shots, name)
        assert _axe_serious(view) == []
        other.close()

    # Signed out: the password first, then the dashboard, with no settings in sight.
    stranger = _context(browser, axe=True)
    page = stranger.new_page()
    page.goto(url)
    expect(page.get_by_role("heading", name="Password required")).to_be_visible()
    _shoot(page, shots, "share-password")
    assert _axe_serious(page) == []
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="View dashboard").click()
    expect(page.get_by_text("That password is not right.")).to_be_visible()
    page.get_by_label("Password").fill(SHARE_PASSWORD)
    with page.expect_response(re.compile(r"/api/v1/stats/")) as first_call:
        page.get_by_role("button", name="View dashboard").click()
    call = first_call.value
    assert call.status == 200, call.text()
    assert call.request.headers["authorization"].startswith("Bearer ey")
    expect(page).to_have_url(url)
    visitors = page.locator('[data-metric="visitors"]')
    expect(visitors).to_have_attribute("data-value", "3")
    expect(page.locator('[data-metric="pageviews"]')).to_have_attribute("data-value", "4")
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    _shoot(page, shots, "share-dashboard")
    assert _axe_serious(page) == []
    stranger.close()

    if os.environ.get("AVOCET_UPDATE_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(light, out / "sharing.png")


def test_embed_shows_on_allowed_origin_when_framed_and_stays_empty_elsewhere(
    world: World, browser: Browser, site: SiteServer, tmp_path: Path
) -> None:
    base = world.live.url
    owner = world.user("owner@example.com")
    site_id = world.site("shop.test", owner)
    _seed(world, site_id)
    allowed = f"http://shop.test:{site.port}"
    client = world.session(owner.email)
    response = client.post(
        f"/ui/sites/{site_id}/sharing",
        data={"csrf_token": client.headers["X-CSRF-Token"], "frame_origins": allowed},
    )
    assert response.status_code == 303, response.text
    token = world.meta.fetchone("SELECT token FROM share_links")[0]
    frame = f'<iframe src="{base}/share/{token}?embed=true" title="Stats"></iframe>'
    style = "<style>body{margin:2rem}iframe{width:100%;height:1500px;border:0}</style>"
    site.add("/stats.html", f"<!doctype html><title>Stats</title>{style}<h1>Our stats</h1>{frame}")

    context = _context(browser)
    page = context.new_page()
    page.goto(site.url("/stats.html"))
    embedded = page.frame_locator("iframe")
    expect(embedded.locator('[data-metric="visitors"]')).to_have_attribute("data-value", "3")
    expect(embedded.get_by_role("link", name="Sites")).to_have_count(0)
    _shoot(page, tmp_path / "shots", "embed-1280")

    # Same page, another origin (other.test is not listed): Chromium refuses to render it.
    blocked = context.new_page()
    with blocked.expect_event("console", lambda m: "frame-ancestors" in m.text):
        blocked.goto(site.url("/stats.html", host="other.test"))
    time.sleep(0.5)
    inner = blocked.frames[-1]
    # Refused, the frame never holds the dashboard: Chromium shows an error page, a blank
    # one, or (depending on timing) a frame with no URL yet.
    assert inner.url.startswith("chrome-error://") or inner.url in ("about:blank", "")
    assert "/share/" not in inner.url
    assert inner.query_selector("#dashboard") is None
    context.close()
