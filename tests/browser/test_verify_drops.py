"""The verify page in a browser when hits arrive but are dropped: the table of reasons
(counts, no address) and the proxy warning appear while the page polls, on a desktop and on
a 375 px phone, where nothing scrolls sideways; the localhost option edits the snippet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from app.ingest.diagnostics import WINDOW_HITS
from tests.accounts_fixtures import PASSWORD, auth_settings
from tests.browser.conftest import DESKTOP_UA
from tests.conftest import CHROME_UA, LiveServer, start_live_server, stop_live_server


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    live = start_live_server(auth_settings(tmp_path))
    try:
        yield live
    finally:
        stop_live_server(live)


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (1280, "dark"), (375, "light")])
def test_verify_shows_dropped_hits_and_the_proxy_warning_when_they_happen(
    server: LiveServer, browser: Browser, tmp_path: Path, width: int, scheme: str
) -> None:
    context = browser.new_context(
        user_agent=DESKTOP_UA,
        viewport={"width": width, "height": 900},
        is_mobile=width < 500,
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.get_by_label("Email").fill("me@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_label("Domain").fill("shop.example.com")
        page.get_by_role("button", name="Add site").click()
        site_id = page.url.split("/")[-2]
        snippet = page.locator("#snippet")
        page.get_by_label("Also track on localhost").check()
        expect(snippet).to_contain_text("data-allow-local")
        page.screenshot(path=str(tmp_path / f"install-{width}-{scheme}.png"))
        expect(page.locator("#verify-problems")).to_be_hidden()
        body = {"n": "pageview", "u": "https://shop.example.com/", "s": site_id}
        with httpx.Client(base_url=server.url) as http:
            http.post("/collect", json=body, headers={"User-Agent": "curl/8.5.0"})
            http.post("/collect", json={**body, "s": "typo"}, headers={"User-Agent": CHROME_UA})
            for _ in range(WINDOW_HITS):  # the proxy's address for every visitor
                http.post(
                    "/collect",
                    json=body,
                    headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "172.18.0.3"},
                )
        rows = page.locator("#dropped tbody tr")
        expect(rows).to_have_count(2, timeout=10_000)
        # Newest first; these two came within a second or so, in either order.
        cells = rows.evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        assert sorted(cell[:2] for cell in cells) == [
            [
                "bot: sent by a bot or a command-line client (its User-Agent); a browser's counts",
                "1",
            ],
            [
                "unknown site: from a page on this domain, naming a site id or domain that does"
                " not exist (check data-site / data-domain in the snippet)",
                "1",
            ],
        ]
        expect(page.locator("#verify-warnings li")).to_contain_text(
            "AVOCET_TRUSTED_PROXIES=", timeout=10_000
        )
        expect(page.locator("#recent tbody tr").first).to_be_visible()
        page.locator("#verify-problems").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / f"verify-drops-{width}-{scheme}.png"))
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
    finally:
        context.close()
