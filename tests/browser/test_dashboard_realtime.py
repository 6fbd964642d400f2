"""The realtime view draws visitors per minute over the last 30 minutes (v2 `time:minute`),
and a visit that arrives shows up without a reload. Visits are loaded with known times
(minutes before now), so each minute's count is known by hand."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from app.storage.accounts import set_role, user_by_email
from tests.browser import dashboard_data as data
from tests.browser.test_dashboard import OWNER, Dash, dash, page  # noqa: F401
from tests.conftest import CHROME_UA, IPHONE_UA


def minute_label(at: datetime) -> str:
    """The v2 label of the minute `at` falls in (the test site is in UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:00")


def graph(view: Page) -> dict[str, int]:
    box = view.locator("#graph")
    labels = json.loads(box.get_attribute("data-labels") or "[]")
    points = json.loads(box.get_attribute("data-points") or "[]")
    return dict(zip(labels, points, strict=True))


def test_realtime_graph_counts_visitors_per_minute_and_moves_when_a_visit_arrives(
    page: Page,  # noqa: F811
    dash: Dash,  # noqa: F811
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    if now.second > 50:  # keep the visits below in the minutes computed here
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    # A site of its own: the module's visits of "today" are within the last 30 minutes
    # when the tests run early in the UTC day.
    meta = dash.live.services.meta
    site = meta.add_site("realtime.test", timezone="UTC")
    owner = user_by_email(meta, OWNER)
    assert owner is not None
    set_role(meta, site.id, owner.id, "owner")
    dash.live.services.sites.reload()
    dash = Dash(dash.live, site.id)
    early = now - timedelta(minutes=20)
    later = now - timedelta(minutes=12)
    # By hand: `early`'s minute: 2 visitors (one of them twice), `later`'s minute: 1.
    data.load(
        dash.live,
        dash.site_id,
        [
            data.Visit(early, "81.2.69.201", CHROME_UA, None, [data.pv(0, "/"), data.pv(5, "/a")]),
            data.Visit(early, "8.8.8.202", IPHONE_UA, None, [data.pv(1, "/")]),
            data.Visit(later, "81.2.69.203", CHROME_UA, None, [data.pv(0, "/b")]),
        ],
    )
    page.goto(dash.url + "?period=realtime")
    box = page.locator("#graph")
    expect(box).to_have_attribute("data-points", re.compile(r"\["))
    expect(page.locator("#graph-title")).to_have_text("Unique visitors per minute, last 30 minutes")
    shown = graph(page)
    assert len(shown) == 31, list(shown)  # 30 minutes back to the current one
    busy = {label: n for label, n in shown.items() if n}
    assert busy == {minute_label(early): 2, minute_label(later): 1}
    # A visit now: the graph's current minute counts it within the 10 s refresh.
    data.load(
        dash.live,
        dash.site_id,
        [data.Visit(datetime.now(UTC), "8.8.8.204", CHROME_UA, None, [data.pv(0, "/")])],
    )
    deadline = time.monotonic() + 15
    while sum(graph(page).values()) != 4 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert sum(graph(page).values()) == 4
    page.screenshot(path=str(tmp_path / "realtime.png"))
