"""The first day of a real install, walked the way the README tells it (#19, must hold).

A fresh data dir; `avocet serve` as a real process with AVOCET_PUBLIC_URL (the address
visitors reach, here http://analytics.test:PORT, which Chromium resolves to this machine);
`avocet site add` before any user exists; the set-up page in Chromium, which lands the new
admin on that site; the snippet the CLI printed, pasted verbatim into a page of a
real-looking host (http://shop.test:PORT/, no test-only switches: this browser says
navigator.webdriver = false, like a visitor's); "verify installation" showing the events;
the dashboard showing the numbers; a backup and an export taken while the server runs,
with no token and no restart.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP_UA, SiteServer
from tests.browser.test_ui import Shots
from tests.conftest import ROOT, ServeProcess, free_port

EMAIL = "me@example.com"
PASSWORD = "a long enough password"


@pytest.fixture
def visitor_browser(playwright: Playwright) -> Iterator[Browser]:
    # A visitor's Chromium: navigator.webdriver is false, so the snippet needs no switch.
    args = [*CHROMIUM_ARGS, "--disable-blink-features=AutomationControlled"]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    yield browser
    browser.close()


@pytest.fixture
def server(tmp_path: Path, playwright: Playwright) -> Iterator[ServeProcess]:
    port = free_port()
    proc = ServeProcess(
        tmp_path / "data",
        port,
        extra_env={
            "AVOCET_PUBLIC_URL": f"http://analytics.test:{port}",
            # Cheap password hashes: the test signs up once, the cost is not the point.
            "AVOCET_AUTH__PASSWORD_MEMORY_KIB": "1024",
        },
    )
    try:
        yield proc
    finally:
        if proc.proc is not None:
            proc.kill()


def avocet(server: ServeProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The README's `.venv/bin/avocet ...`, run from `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **server.extra_env, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_first_day_from_readme_to_a_tracked_site_and_a_backup(
    server: ServeProcess,
    visitor_browser: Browser,
    site: SiteServer,
    tmp_path: Path,
) -> None:
    public = server.extra_env["AVOCET_PUBLIC_URL"]
    shots = Shots(tmp_path / "screenshots")

    # 1. The README: add the first site (before any user exists), then serve.
    added = avocet(server, tmp_path, "site", "add", "shop.test", "--timezone", "Europe/Berlin")
    assert added.returncode == 0, added.stderr
    site_id = re.search(r"added with id (\w+)", added.stdout).group(1)  # type: ignore[union-attr]
    snippet = f'<script defer data-site="{site_id}" src="{public}/script.js"></script>'
    assert f"  {snippet}" in added.stdout.splitlines()
    assert "the first user you create becomes its owner" in added.stdout
    server.start()

    # 2. Set-up in the browser, at the public address: the admin lands on the site.
    context = visitor_browser.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.goto(public + "/")
    expect(page).to_have_url(public + "/ui/setup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{public}/ui/sites/{site_id}")
    shots.take(page, "dashboard-empty")

    # 3. The install page shows the same snippet the CLI printed (public_url).
    page.goto(f"{public}/ui/sites/{site_id}/install")
    expect(page.locator("#snippet")).to_have_text(snippet)
    expect(page.get_by_text("Waiting for the first event")).to_be_visible()

    # 4. A page of the site, on its own host, carries the snippet verbatim.
    html = "<!doctype html><html><head>{}<title>{}</title></head><body>{}</body></html>"
    site.add("/", html.format(snippet, "Shop", '<a href="/pricing">Pricing</a>'))
    site.add("/pricing", html.format(snippet, "Pricing", "29 EUR"))
    visitor = context.new_page()
    visitor.goto(site.url("/"))
    assert visitor.evaluate("navigator.webdriver") is False
    visitor.get_by_role("link", name="Pricing").click()
    expect(visitor).to_have_title("Pricing")
    visitor.close()

    # 5. "Verify installation" shows them, newest first.
    rows = page.locator("#recent tbody tr")
    expect(rows).to_have_count(2, timeout=15_000)
    expect(rows.first).to_contain_text("/pricing")
    expect(rows.nth(1)).to_contain_text("/")
    expect(page.get_by_text("Installed: events are arriving")).to_be_visible()
    shots.take(page, "verify")

    # 6. The dashboard counts one visitor, one visit, two pageviews.
    page.goto(f"{public}/ui/sites/{site_id}?period=today")
    for metric, value in (("visitors", 1), ("visits", 1), ("pageviews", 2)):
        expect(page.locator(f'#top-stats [data-metric="{metric}"]')).to_have_attribute(
            "data-value", str(value), timeout=15_000
        )
    shots.take(page, "dashboard")
    context.close()

    # 7. Backup and export while the server runs: no token, no restart.
    backup = avocet(server, tmp_path, "backup", "backup-1", "--json")
    assert backup.returncode == 0, backup.stderr
    made = json.loads(backup.stdout)
    stored = made["rows"]["events"]  # two pageviews and their engagement pings
    assert made["via"] == "server" and stored >= 2
    export = avocet(server, tmp_path, "export", "shop.test")
    assert export.returncode == 0, export.stderr
    out = tmp_path / "export-shop.test"
    assert export.stdout.splitlines()[0] == f"{out}/events.csv: {stored} rows"
    with (out / "events.csv").open(newline="") as f:
        exported = list(csv.DictReader(f))
    pageviews = [(r["name"], r["pathname"]) for r in exported if r["name"] == "pageview"]
    assert pageviews == [("pageview", "/"), ("pageview", "/pricing")]
    doctor = avocet(server, tmp_path, "doctor")
    assert (doctor.returncode, doctor.stdout.splitlines()[-1]) == (0, "healthy")
    assert server.proc is not None and server.proc.poll() is None  # still serving
