"""The "Data" and "Exclusions" pages (#21) over real HTTP against the live app: retention and
reset forms, exclusion rules added and deleted, each bad input a message next to its field,
the counts the rules dropped (also on the verify page), and who may use them."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import CHROME_UA
from tests.test_ui_forms import field_errors, sign_in_ui

OWNER, ADMIN = "owner@example.com", "admin@example.com"


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    # The test client is the proxy in front of the visitors (X-Forwarded-For is theirs).
    proxies = ("127.0.0.0/8", "::1/128")
    with running_world(auth_settings(tmp_path, run_jobs=False, trusted_proxies=proxies)) as found:
        yield found


def _setup(world: World) -> tuple[str, httpx.Client, str]:
    owner = world.user(OWNER)
    admin = world.user(ADMIN)
    site = world.site("shop.test", owner, **{admin.id: "admin"})
    http, csrf = sign_in_ui(world, OWNER)
    return site, http, csrf


def _hit(world: World, site: str, path: str, ip: str) -> None:
    body = {"n": "pageview", "u": f"https://shop.test{path}", "s": site}
    headers = {"X-Forwarded-For": ip, "User-Agent": CHROME_UA}
    with world.client() as http:
        sent = http.post("/collect", content=json.dumps(body), headers=headers)
    assert sent.status_code == 204


def _text(body: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|table)>', body, re.S)
    assert found, element_id
    inline = re.sub(r"</?(?:strong|a|code|span)\b[^>]*>", "", found.group(1))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


RETENTION_CASES = [
    (
        {"raw_retention_days": "ninety", "retention_days": "-1"},
        {
            "raw_retention_days": "Enter a whole number of days, or leave it blank.",
            "retention_days": "Enter a whole number of days, or leave it blank.",
        },
    ),
    ({"raw_retention_days": "0", "retention_days": ""}, {"raw_retention_days": "At least 1 day."}),
    (
        # Beyond the calendar once subtracted from today (it was a 500 on the stats APIs).
        {"raw_retention_days": "1000000000", "retention_days": ""},
        {"raw_retention_days": "At most 100000 days."},
    ),
    (
        {"raw_retention_days": "", "retention_days": "100001"},
        {"retention_days": "At most 100000 days."},
    ),
    (
        {"raw_retention_days": "100", "retention_days": "30"},
        {
            "raw_retention_days": "Can't exceed retention_days (100 > 30): raw events are part"
            " of what is kept."
        },
    ),
    (
        # The server's default raw retention (90 days) exceeds a 30-day total.
        {"raw_retention_days": "", "retention_days": "30"},
        {
            "raw_retention_days": "Can't exceed retention_days (90 > 30): raw events are part"
            " of what is kept."
        },
    ),
]


@pytest.mark.parametrize(("fields", "errors"), RETENTION_CASES)
def test_retention_form_shows_each_error_next_to_its_field(
    world: World, fields: dict[str, str], errors: dict[str, str]
) -> None:
    site, http, csrf = _setup(world)
    answer = http.post(f"/ui/sites/{site}/data/retention", data={"csrf_token": csrf, **fields})
    assert answer.status_code == 400, answer.text
    assert field_errors(answer.text) == errors
    stored = world.meta.fetchone(
        "SELECT raw_retention_days, retention_days FROM sites WHERE id = ?", (site,)
    )
    assert stored == (None, None)  # nothing saved


def test_retention_form_saves_what_the_sites_api_answers(world: World) -> None:
    site, http, csrf = _setup(world)
    page = http.get(f"/ui/sites/{site}/data")
    assert page.status_code == 200
    assert _text(page.text, "retention-now") == (
        "Now: raw events are kept 90 days, daily statistics forever (this server's defaults)."
    )
    fields = {"csrf_token": csrf, "raw_retention_days": "30", "retention_days": "400"}
    saved = http.post(f"/ui/sites/{site}/data/retention", data=fields)
    assert (saved.status_code, saved.headers["location"]) == (
        303,
        f"/ui/sites/{site}/data?done=retention",
    )
    api = world.session(OWNER).get(f"/api/v1/sites/{site}").json()["site"]
    assert (api["raw_retention_days"], api["retention_days"], api["retention_is_default"]) == (
        30,
        400,
        False,
    )
    shown = http.get(f"/ui/sites/{site}/data?done=retention").text
    assert 'id="f-raw_retention_days" name="raw_retention_days" type="text"\n    value="30"' in (
        shown
    )
    assert _text(shown, "retention-now") == (
        "Now: raw events are kept 30 days, daily statistics 400 days."
        f" Stats before {api['retained_from']} answer zero."
    )
    # Blank again: back to the server's defaults.
    fields = {"csrf_token": csrf, "raw_retention_days": "", "retention_days": ""}
    assert http.post(f"/ui/sites/{site}/data/retention", data=fields).status_code == 303
    api = world.session(OWNER).get(f"/api/v1/sites/{site}").json()["site"]
    assert (api["raw_retention_days"], api["retention_days"], api["retention_is_default"]) == (
        90,
        0,
        True,
    )


def test_reset_form_says_what_goes_then_resets_when_the_domain_is_typed(world: World) -> None:
    site, http, csrf = _setup(world)
    for i in range(3):
        _hit(world, site, f"/p{i}", "192.0.2.10")
    world.live.wait_rows("SELECT * FROM events", [], 3)
    page = http.get(f"/ui/sites/{site}/data").text
    assert _text(page, "reset-what") == (
        "This deletes, from this server's disk, for all days: 3 raw events and 0 days of"
        " daily statistics (0 rows), with their bot and exclusion counters."
    )
    reset = f"/ui/sites/{site}/data/reset"
    reversed_days = {"scope": "range", "from": "2026-03-02", "to": "2026-03-01", "confirm": ""}
    answer = http.post(reset, data={"csrf_token": csrf, **reversed_days})
    assert answer.status_code == 400
    assert field_errors(answer.text) == {"from": "Must not be after to."}
    answer = http.post(reset, data={"csrf_token": csrf, "scope": "range", "from": "2026-03-01"})
    assert field_errors(answer.text) == {"to": "Pick a day."}
    # A range without the confirmation: the page names what that range deletes.
    far = {"scope": "range", "from": "2001-01-01", "to": "2001-01-31", "confirm": "shop"}
    answer = http.post(reset, data={"csrf_token": csrf, **far})
    assert field_errors(answer.text) == {"confirm": "Type shop.test to confirm."}
    assert _text(answer.text, "reset-what") == (
        "This deletes, from this server's disk, from 2001-01-01 to 2001-01-31: 0 raw events"
        " and 0 days of daily statistics (0 rows), with their bot and exclusion counters."
    )
    assert 'value="range" checked' in answer.text and 'value="2001-01-01"' in answer.text
    # An admin may change retention, not reset.
    admin, admin_csrf = sign_in_ui(world, ADMIN)
    assert "Reset stats" not in admin.get(f"/ui/sites/{site}/data").text
    refused = admin.post(reset, data={"csrf_token": admin_csrf, "confirm": "shop.test"})
    assert refused.status_code == 403
    done = http.post(reset, data={"csrf_token": csrf, "scope": "all", "confirm": "Shop.Test"})
    assert done.status_code == 303
    rid = done.headers["location"].split("request=")[1]
    assert done.headers["location"] == f"/ui/sites/{site}/data?done=reset&request={rid}"
    deadline = time.monotonic() + 15
    while "done, 3 raw events deleted" not in (status := http.get(done.headers["location"]).text):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert _text(status, "reset-status") == f"Reset {rid}: done, 3 raw events deleted."
    assert world.live.rows("SELECT count(*) AS n FROM events") == [{"n": 0}]
    assert world.live.services.sites.by_id(site) is not None  # the site stays


RULE_CASES = [
    (
        {"type": "ip", "value": "10.0.0.300"},
        {
            "value": "Not an IP address or CIDR range: '10.0.0.300' (e.g. 203.0.113.7,"
            " 203.0.113.0/24, 2001:db8::/32)."
        },
    ),
    (
        {"type": "hostname", "value": "https://x/"},
        {"value": "Not a hostname pattern: 'https://x/' (e.g. example.com, *.example.com)."},
    ),
    (
        {"type": "page", "value": "admin"},
        {"value": "A page path starts with / (e.g. /admin/*), ≤ 500 chars."},
    ),
    (
        {"type": "country", "value": "Germany"},
        {"value": "Not a two-letter country code: 'Germany'."},
    ),
    ({"type": "country", "value": " "}, {"value": "Can't be blank."}),
    ({"type": "referrer", "value": "x"}, {"type": "Choose what to exclude."}),
]


@pytest.mark.parametrize(("fields", "errors"), RULE_CASES)
def test_exclusion_form_shows_exact_messages(
    world: World, fields: dict[str, str], errors: dict[str, str]
) -> None:
    site, http, csrf = _setup(world)
    answer = http.post(f"/ui/sites/{site}/exclusions", data={"csrf_token": csrf, **fields})
    assert answer.status_code == 400, answer.text
    assert field_errors(answer.text) == errors
    assert world.meta.fetchall("SELECT * FROM site_exclusions") == []


def test_exclusion_rules_added_counted_and_deleted(world: World) -> None:
    site, http, csrf = _setup(world)
    page = f"/ui/sites/{site}/exclusions"
    assert _text(http.get(page).text, "no-rules") == "No rules: every hit for shop.test is counted."
    for kind, value in (("ip", "203.0.113.7/24"), ("page", "/admin/*"), ("country", "de")):
        added = http.post(page, data={"csrf_token": csrf, "type": kind, "value": value})
        assert (added.status_code, added.headers["location"]) == (303, page)
    again = http.post(page, data={"csrf_token": csrf, "type": "ip", "value": "203.0.113.0/24"})
    assert field_errors(again.text) == {"value": "'203.0.113.0/24' is already excluded."}
    _hit(world, site, "/kept", "192.0.2.10")
    _hit(world, site, "/office", "203.0.113.9")
    _hit(world, site, "/admin/users", "192.0.2.10")
    world.live.wait_rows("SELECT * FROM events", [], 1)
    # The counters are committed by the writer with the hits' batches: wait for both.
    world.live.wait_rows("SELECT * FROM excluded_counts WHERE hits > 0", [], 2)
    body = http.get(page).text
    rules = re.findall(
        r'<td data-label="Kind">([^<]+)</td>\s*<td data-label="Value"><code>([^<]+)', body
    )
    assert rules == [
        ("Country", "DE"),
        ("IP address or range", "203.0.113.0/24"),
        ("Page", "/admin/*"),
    ]
    assert _text(body, "excluded-counts") == (
        "Hits dropped per kind of rule Rule Hits"
        " IP address or range 1 Allowed hostname 0 Page 1 Country 0"
    )
    # The verify page and its poll say the same.
    recent = http.get(f"/ui/sites/{site}/recent").json()
    assert recent["excluded"] == {"ip": 1, "hostname": 0, "page": 1, "country": 0}
    install = http.get(f"/ui/sites/{site}/install").text
    assert _text(install, "excluded") == (
        "2 hits matched one of the site's exclusion rules and were not stored: IP 1,"
        " hostname 0, page 1, country 0. Exclusion rules"
    )
    # Delete: the rule goes, the next hit from that range is kept.
    [rule_id] = [
        r[0] for r in world.meta.fetchall("SELECT id FROM site_exclusions WHERE kind = 'ip'")
    ]
    deleted = http.post(f"{page}/{rule_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    left = re.findall(r'<td data-label="Value"><code>([^<]+)', http.get(page).text)
    assert left == ["DE", "/admin/*"]
    _hit(world, site, "/office-again", "203.0.113.9")
    rows = world.live.wait_rows("SELECT pathname FROM events ORDER BY ts", [], 2)
    assert [r["pathname"] for r in rows] == ["/kept", "/office-again"]
    # The site's tabs link both pages (for owners and admins).
    assert 'href="/ui/sites/' + site + '/exclusions"' in body
    assert f'href="/ui/sites/{site}/data"' in body
