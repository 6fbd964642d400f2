"""The Imports page (#22) in Chromium: an owner uploads GoatCounter's export
(tests/fixtures/imports/goatcounter-v2.csv, the numbers computed by hand in
tests/test_imports.py), follows the job to its summary, uploads the same file again (nothing
added twice), uploads a file with a bad date (the file, line and column shown, nothing
added), and deletes the import after a confirmation naming exactly what goes (then the
stats API answers zero). Screenshots at 1280 px light and dark and 375 px (no sideways
scroll), axe-core with no serious or critical violation."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts_fixtures import auth_settings
from tests.browser.conftest import DESKTOP_UA, ROOT
from tests.browser.test_dashboard_a11y import serious_violations
from tests.browser.test_data_pages import _first_owner, _no_sideways_scroll
from tests.conftest import LiveServer, start_live_server, stop_live_server

SHOTS = os.environ.get("AVOCET_SHOTS_DIR", "")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
GOAT = FIXTURES / "goatcounter-v2.csv"
BAD = FIXTURES / "goatcounter-bad-date.csv"


@pytest.fixture
def server(tmp_path: Path, playwright: object) -> Iterator[LiveServer]:
    # Raw events kept 1000 days: the fixture's days (March 2025) stay raw events.
    live = start_live_server(
        auth_settings(tmp_path, raw_retention_days=1000, open_stats_on_loopback=True)
    )
    try:
        yield live
    finally:
        stop_live_server(live)


def _upload(page: Page, source: str, path: Path, overlap: str | None = None) -> None:
    page.locator(f"input[name=source][value={source}]").check()
    page.get_by_label("Export files").set_input_files(str(path))
    if overlap:
        page.get_by_label(overlap).check()
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/imports?job=*")


def _visitors(server: LiveServer, site_id: str) -> int:
    answer = httpx.get(
        f"{server.url}/api/v1/stats/aggregate",
        params={
            "site_id": site_id,
            "period": "custom",
            "from": "2025-03-01",
            "to": "2025-03-02",
            "metrics": "visitors,pageviews",
        },
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["metrics"]["visitors"])


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (1280, "dark"), (375, "light")])
def test_upload_follow_summarise_and_delete_an_import(
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
        page.goto(f"{server.url}/ui/sites/{site_id}/settings")
        page.get_by_role("link", name="Imports").click()
        expect(page.get_by_role("link", name="Imports")).to_have_attribute("aria-current", "page")
        expect(page.locator("#no-imports")).to_have_text("Nothing imported yet.")
        # The sources this server has, each with the files it takes.
        sources = page.locator("input[name=source]")
        assert sources.evaluate_all("els => els.map(e => e.value)")[:2] == [
            "plausible",
            "goatcounter",
        ]
        # No file chosen: the error beside the field, nothing started.
        page.get_by_role("radio", name="GoatCounter").check()
        page.get_by_role("button", name="Upload and import").click()
        expect(page.locator("#e-file")).to_have_text(
            "Attach the export's files as multipart parts named file."
        )
        assert serious_violations(page) == []

        _upload(page, "goatcounter", GOAT)
        job = page.locator("li.import").first
        expect(job.locator(".badge")).to_have_text("Imported", timeout=20_000)
        figures = job.locator("dl.figures > div")
        expect(figures).to_have_text(
            [
                "Rows read8",
                "Events imported7",
                "Visits5",
                "Days2 (2025-03-01 – 2025-03-02)",
            ]
        )
        expect(job.locator(".skipped")).to_have_text(
            "1 row skipped:\n1 — bot (GoatCounter's Bot column)", use_inner_text=True
        )
        assert _visitors(server, site_id) == 4

        _upload(page, "goatcounter", GOAT)  # the same bytes again
        expect(page.locator("li.import").first.locator(".badge")).to_have_text(
            "Already imported", timeout=20_000
        )
        _upload(page, "goatcounter", BAD)
        bad = page.locator("li.import").first
        expect(bad.locator(".badge")).to_have_text("Failed", timeout=20_000)
        expect(bad.locator(".import-error .error")).to_have_text(
            "goatcounter-bad-date.csv, line 3, column 'Date': 'yesterday' is not valid"
            " (Invalid isoformat string: 'yesterday')"
        )
        expect(bad.locator("dl.where > div")).to_have_text(
            ["Filegoatcounter-bad-date.csv", "Line3", "ColumnDate"]
        )
        assert _visitors(server, site_id) == 4
        expect(page.locator("li.import")).to_have_count(3)
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"imports-{width}-{scheme}.png"), full_page=True)

        page.get_by_role("link", name="Delete the GoatCounter import").click()
        expect(page.locator("#import-deletes li")).to_have_text(["7 raw events"])
        expect(page.locator('.tabs [aria-current="page"]')).to_have_text(["Imports"])
        expect(page.locator("#import-span")).to_have_text("on 2 days, 2025-03-01 to 2025-03-02.")
        _no_sideways_scroll(page)
        assert serious_violations(page) == []
        page.screenshot(path=str(out / f"import-delete-{width}-{scheme}.png"), full_page=True)
        page.get_by_role("button", name="Delete import").click()
        expect(page.locator("#imports-deleted")).to_contain_text("deleted")
        expect(page.locator("li.import .badge")).to_have_text(
            ["Failed", "Already imported", "Deleted"]
        )
        assert _visitors(server, site_id) == 0
    finally:
        context.close()
    if SHOTS:
        for shot in out.iterdir():
            shot.replace(Path(SHOTS) / shot.name)


def test_dashboard_switch_adds_the_imported_aggregates(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    """Plausible's export (its tables uploaded together on the Imports page; numbers by
    hand in tests/test_imports_plausible.py: 15 visitors, 18 visits, 38 pageviews over
    2024-01-01 .. 02) stays out of the dashboard until its switch is on."""
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        site_id = _first_owner(page, server.url, "shop.example.com")
        dashboard = f"{server.url}/ui/sites/{site_id}?period=custom&from=2024-01-01&to=2024-01-02"
        page.goto(dashboard)
        expect(page.locator("#with-imported")).to_have_count(0)  # nothing imported yet
        page.goto(f"{server.url}/ui/sites/{site_id}/imports")
        page.locator("input[name=source][value=plausible]").check()
        tables = sorted((FIXTURES / "plausible").glob("*.csv"))
        page.get_by_label("Export files").set_input_files([str(p) for p in tables])
        page.get_by_role("button", name="Upload and import").click()
        page.wait_for_url("**/imports?job=*")
        expect(page.locator("li.import .badge")).to_have_text("Imported", timeout=20_000)

        page.goto(dashboard)
        tiles = page.locator("#top-stats li.stat")
        expect(tiles.locator("xpath=self::*[@data-metric='visitors']")).to_have_attribute(
            "data-value", "0"
        )
        switch = page.get_by_label("Imported data")
        expect(switch).not_to_be_checked()
        switch.check()
        expect(page).to_have_url(dashboard + "&with_imported=true")
        for metric, value in (("visitors", "15"), ("visits", "18"), ("pageviews", "38")):
            expect(page.locator(f'#top-stats [data-metric="{metric}"]')).to_have_attribute(
                "data-value", value
            )
        expect(page.locator("#imports-note")).to_be_hidden()
        assert serious_violations(page) == []
        page.screenshot(path=str(tmp_path / "dashboard-imported.png"))
        # Days the export doesn't cover: the top numbers and the graph say so.
        page.goto(
            f"{server.url}/ui/sites/{site_id}?period=custom&from=2024-02-01&to=2024-02-02"
            "&with_imported=true"
        )
        expect(page.locator("#imports-note")).to_have_text("No imported data falls in this period.")
        assert serious_violations(page) == []
        page.screenshot(path=str(tmp_path / "dashboard-imported-note.png"))
        page.goto(dashboard + "&with_imported=true")
        page.reload()  # the URL keeps the choice
        expect(page.get_by_label("Imported data")).to_be_checked()
        page.get_by_label("Imported data").uncheck()
        expect(page.locator('#top-stats [data-metric="visitors"]')).to_have_attribute(
            "data-value", "0"
        )
    finally:
        context.close()
    if SHOTS:
        for name in ("dashboard-imported.png", "dashboard-imported-note.png"):
            (tmp_path / name).replace(Path(SHOTS) / name)


def test_a_running_import_shows_its_progress_bar(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    """A 40,000-row GoatCounter export (bench/import.py's generator): the job's bar gets
    the file's row count as its end and moves, then the page shows the summary."""
    spec = importlib.util.spec_from_file_location("bench_import", ROOT / "bench" / "import.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    export = tmp_path / "goatcounter-40k.csv"
    bench.generate(export, 40_000)
    context = browser.new_context(user_agent=DESKTOP_UA)
    try:
        page = context.new_page()
        site_id = _first_owner(page, server.url, "shop.example.com")
        page.goto(f"{server.url}/ui/sites/{site_id}/imports")
        _upload(page, "goatcounter", export)
        bar = page.locator("li.import .job-progress progress")
        expect(bar).to_have_attribute("max", "40000", timeout=20_000)
        expect(page.locator("li.import .job-progress [role=status]")).to_contain_text(
            re.compile(r"of 40,000 rows read|Writing 40,000 rows")
        )
        expect(page.locator("li.import .badge")).to_have_text("Imported", timeout=60_000)
        expect(page.locator("li.import dl.figures > div").first).to_have_text("Rows read40,000")
    finally:
        context.close()
