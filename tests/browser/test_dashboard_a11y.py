"""axe-core (the copy bundled in axe-playwright-python) finds no serious or critical
violation on the dashboard in every state a person reaches: light and dark, a details view,
the API view, the filter editor, the date picker and its calendar, the shortcuts popover,
the realtime view, a 375 px phone, and the shared dashboard (/share/{token}, signed out)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from app.storage.shares import add_share_link
from tests.browser.conftest import DESKTOP_UA
from tests.browser.test_dashboard import Dash, dash, signed_in  # noqa: F401

_AXE = Axe()


def serious_violations(page: Page) -> list[str]:
    """Each serious or critical violation with the elements it was found on."""
    found = _AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} @ {[n['target'] for n in v['nodes']][:5]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def ready(page: Page) -> None:
    expect(page.locator('#top-stats [data-metric="visitors"]')).to_be_visible()
    expect(page.locator("#panels .panel-body[aria-busy]")).to_have_count(0)
    expect(page.locator("#panel-pages .row[data-property]").first).to_be_visible()


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def themed(browser: Browser, dash: Dash, scheme: str) -> Iterator[Page]:  # noqa: F811
    context = signed_in(browser, dash, color_scheme=scheme)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors


def _details(page: Page) -> None:
    page.locator("#panel-pages .foot-button", has_text="Details").click()
    expect(page.locator("dialog.details-sheet tbody tr").first).to_be_visible()


def _api(page: Page) -> None:
    page.locator("#panel-sources .foot-button", has_text="API").click()
    expect(page.locator("#api-native")).to_be_visible()


def _filter_editor(page: Page) -> None:
    page.locator("#filter-button").click()
    expect(page.locator("#filter-menu")).to_be_visible()


def _date_picker(page: Page) -> None:
    page.locator("#period-button").click()
    expect(page.locator("#period-menu")).to_be_visible()


def _calendar(page: Page) -> None:
    page.keyboard.press("c")
    expect(page.locator("#period-menu .calendar")).to_be_visible()


def _shortcuts(page: Page) -> None:
    page.locator("#shortcuts-button").click()
    expect(page.locator("#shortcuts")).to_be_visible()


def _filtered(page: Page) -> None:
    page.locator('#panel-sources .tab[data-tab="sources"]').click()
    page.locator('#panel-sources .row[data-value="Google"] .row-label').click()
    expect(page.locator('#filters .chip[data-key="source"]')).to_be_visible()
    ready(page)


def _every_tab(page: Page) -> None:
    """Each panel on its last tab (map, goals' properties input, ...)."""
    for panel, tab in (("locations", "map"), ("goals", "props"), ("devices", "screen")):
        page.locator(f'#panel-{panel} .tab[data-tab="{tab}"]').click()
    expect(page.locator("#panel-locations svg.map")).to_be_visible()


STATES: dict[str, Callable[[Page], None]] = {
    "dashboard": lambda page: None,
    "details": _details,
    "api": _api,
    "filter-editor": _filter_editor,
    "date-picker": _date_picker,
    "calendar": _calendar,
    "shortcuts": _shortcuts,
    "filtered": _filtered,
    "other-tabs": _every_tab,
}


@pytest.mark.parametrize("state", list(STATES))
def test_no_serious_violation_when_dashboard_shown(
    themed: Page,
    dash: Dash,  # noqa: F811
    state: str,
) -> None:
    themed.goto(dash.url)
    ready(themed)
    STATES[state](themed)
    assert serious_violations(themed) == []


def test_no_serious_violation_when_realtime_view_shown(themed: Page, dash: Dash) -> None:  # noqa: F811
    themed.goto(dash.url + "?period=realtime")
    expect(themed.locator('#top-stats [data-metric="current_visitors"]')).to_be_visible()
    assert serious_violations(themed) == []


def test_no_serious_violation_when_shown_on_a_phone(browser: Browser, dash: Dash) -> None:  # noqa: F811
    context = signed_in(browser, dash)
    try:
        page = context.new_page()
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(dash.url)
        ready(page)
        assert serious_violations(page) == []
        _date_picker(page)
        assert serious_violations(page) == []
    finally:
        context.close()


@pytest.mark.parametrize("embed", [False, True])
def test_no_serious_violation_when_shared_dashboard_opened_signed_out(
    browser: Browser,
    dash: Dash,  # noqa: F811
    scheme: str,
    embed: bool,
) -> None:
    link = add_share_link(
        dash.live.services.meta, site_id=dash.site_id, name="a11y", created_by=None
    )
    context = browser.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 900}, color_scheme=scheme
    )
    try:
        page = context.new_page()
        page.goto(f"{dash.live.url}/share/{link.token}" + ("?embed=true" if embed else ""))
        ready(page)
        expect(page.locator('#top-stats [data-metric="visitors"]')).to_have_attribute(
            "data-value", "7"
        )
        assert serious_violations(page) == []
        _details(page)
        assert serious_violations(page) == []
    finally:
        context.close()
