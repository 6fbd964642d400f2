"""Email reports (SPEC §7): addresses put on a site's weekly list through the settings UI
get the report of the last Monday-to-Sunday once it is due, from a real SMTP server's view:
the numbers of hand-counted pageviews against the week before, the top sources and pages,
plain text and HTML, and an unsubscribe link that works in one click (RFC 8058) but not
by merely opening it. Sent once: a second run, and a restart, send nothing; an address
added after a report was due waits for the next one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.config import MailSettings
from app.jobs.reports import due, wants
from app.storage.reports import Recipient, recipients_of, thresholds_of
from tests.accounts_fixtures import World, auth_settings, running_world
from tests.test_security_members import Inbox, smtp  # noqa: F401
from tests.test_ui_forms import field_errors, page_token, sign_in_ui

OWNER = "owner@example.com"


def monday(today: date) -> date:
    return today - timedelta(days=today.weekday())


# The report is asked for at 09:30 UTC on this week's Monday; it covers the week before.
NOW = datetime.combine(monday(datetime.now(UTC).date()), time(9, 30), UTC)
WEEK = NOW.date() - timedelta(days=7)  # the reported week's Monday
BEFORE = WEEK - timedelta(days=7)


def at(day: date, minute: int = 0) -> str:
    return datetime.combine(day, time(12, minute), UTC).isoformat().replace("+00:00", "Z")


# (day, minute, user, path, referrer): visits are the same user's pageviews within 30
# minutes, and a visitor is a user on one day (the day's salt), so u1 on Tuesday and on
# Saturday are two. The reported week: 5 visitors, 5 visits, 6 pageviews; u1's Tuesday
# visit is the only one that is not a bounce (2 pageviews 60 s apart) -> bounce rate 4/5 =
# 80 %, visit duration 60 s / 5 = 12 s. Sources: Google 2 (u2, u6), Hacker News 1, Direct 2
# (u3, u1 on Saturday); pages: / 4 visitors, /pricing 1, /blog 1. The week before: 2
# visitors, 2 visits, 2 pageviews, both bounces, 0 s.
HITS = [
    (WEEK + timedelta(days=1), 0, "u1", "/", "https://news.ycombinator.com/"),
    (WEEK + timedelta(days=1), 1, "u1", "/pricing", None),
    (WEEK + timedelta(days=2), 0, "u2", "/", "https://www.google.com/"),
    (WEEK + timedelta(days=3), 0, "u3", "/blog", None),
    (WEEK + timedelta(days=5), 0, "u1", "/", None),
    (WEEK + timedelta(days=6), 0, "u6", "/", "https://www.google.com/"),
    (BEFORE + timedelta(days=1), 0, "u4", "/", None),
    (BEFORE + timedelta(days=2), 0, "u5", "/about", None),
]


@pytest.fixture
def world(tmp_path: Path, smtp: tuple[int, Inbox]) -> Iterator[World]:  # noqa: F811
    port, _ = smtp
    mail = MailSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        from_address="Avocet <analytics@example.com>",
    )
    with running_world(auth_settings(tmp_path, mail=mail)) as found:
        yield found


def seed(world: World, site: str) -> None:
    owner = world.meta.fetchone("SELECT id FROM users WHERE email = ?", (OWNER,))
    assert owner is not None
    from app.storage.accounts import user_by_email

    user = user_by_email(world.meta, OWNER)
    assert user is not None
    key = world.key(user, site, scopes=("events:write",))
    http = world.bearer(key)
    for day, minute, uid, path, referrer in HITS:
        body: dict[str, Any] = {
            "url": f"https://shop.test{path}",
            "user_id": uid,
            "timestamp": at(day, minute),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
        }
        if referrer:
            body["referrer"] = referrer
        answer = http.post("/api/v1/pageviews", json=body)
        assert answer.status_code == 202, answer.text


def send(world: World, now: datetime) -> int:
    svc = world.live.services
    svc.clock = lambda: now
    return asyncio.run(svc.send_reports())


def subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def parts(message: Message) -> tuple[str, str]:
    """(plain text, HTML) of a report."""
    found = {
        part.get_content_type(): part.get_payload(decode=True).decode()  # type: ignore[union-attr]
        for part in message.walk()
        if not part.is_multipart()
    }
    return found["text/plain"], found["text/html"]


def test_a_weekly_report_goes_once_with_the_weeks_numbers_and_unsubscribes_in_one_click(
    world: World,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    _, inbox = smtp
    user = world.user(OWNER)
    site = world.site("shop.test", user)
    seed(world, site)
    http, csrf = sign_in_ui(world, OWNER)
    path = f"/ui/sites/{site}/reports"
    bad = http.post(path, data={"csrf_token": csrf, "kind": "weekly", "email": "not-mail"})
    assert bad.status_code == 400
    assert field_errors(bad.text) == {"email": "This isn't a valid email address."}
    for kind, email in (("weekly", "Ann@Example.com"), ("monthly", "bob@example.com")):
        added = http.post(path, data={"csrf_token": csrf, "kind": kind, "email": email})
        assert added.status_code == 303, added.text
    again = http.post(path, data={"csrf_token": csrf, "kind": "weekly", "email": "ann@example.com"})
    assert field_errors(again.text) == {
        "email": "The weekly report list has ann@example.com already."
    }
    listed = http.get(path).text
    assert "ann@example.com" in listed and "bob@example.com" in listed

    # Both were added just now, after this Monday's report was due: nothing goes out.
    assert send(world, NOW) == 0
    # Ann's address was on the list before (as if added last week); Bob's stays new.
    world.meta.execute(
        "UPDATE email_reports SET created_at = ? WHERE email = 'ann@example.com'",
        (int((NOW - timedelta(days=3)).timestamp()),),
    )
    assert send(world, NOW) == 1
    assert send(world, NOW + timedelta(hours=5)) == 0  # once
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    last = WEEK + timedelta(days=6)
    assert message["To"] == "ann@example.com"
    assert subject(message) == (
        f"Weekly report for shop.test: {WEEK.day} {WEEK:%b} – {last.day} {last:%b %Y}"
    )
    token = next(r.token for r in recipients_of(world.meta, site) if r.kind == "weekly")
    link = f"{world.live.url}/reports/unsubscribe/{token}"
    assert message["List-Unsubscribe"].strip() == f"<{link}>"  # (folded onto its own line)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(message)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for line in (
        "Unique visitors 5 (+150%)",
        "Visits 5 (+150%)",
        "Pageviews 6 (+200%)",
        "Bounce rate 80% (−20 pts)",
        "Visit duration 12s (+100%)",
        "Google 2",
        "Hacker News 1",
        "Direct / None 2",
        "/ 4",
        "/pricing 1",
        "/blog 1",
        f"Unsubscribe: {link}",
    ):
        assert line in lines, (line, text)
    sources = lines.index("Top sources")
    assert set(lines[sources + 1 : sources + 3]) == {"Google 2", "Direct / None 2"}  # most first
    assert lines[lines.index("Top pages") + 1] == "/ 4"
    dashboard = f"{world.live.url}/ui/sites/{site}?period=custom&from={WEEK}&to={last}"
    assert f'href="{dashboard.replace("&", "&amp;")}"' in html
    assert re.search(r">\s*80%\s*<", html) and ">+100%<" in html and f'href="{link}"' in html

    # Opening the link (as a mail scanner does) asks; the one-click POST unsubscribes.
    with httpx.Client() as anon:
        asked = anon.get(link)
        assert asked.status_code == 200
        assert "Stop mailing the weekly report of" in asked.text
        assert sorted(r.email for r in recipients_of(world.meta, site)) == [
            "ann@example.com",
            "bob@example.com",
        ]
        done = anon.post(link, data={"List-Unsubscribe": "One-Click"})
        assert (
            done.status_code == 200 and "ann@example.com gets no more weekly reports" in done.text
        )
        assert [r.email for r in recipients_of(world.meta, site)] == ["bob@example.com"]
        assert anon.get(link).status_code == 404  # the link is void now
        assert anon.post(link).status_code == 200  # (a second click: still off the list)


def test_a_test_send_mails_now_and_leaves_the_list_s_own_send_alone(
    world: World,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    _, inbox = smtp
    user = world.user(OWNER)
    site = world.site("shop.test", user)
    http, csrf = sign_in_ui(world, OWNER)
    path = f"/ui/sites/{site}/reports"
    http.post(path, data={"csrf_token": csrf, "kind": "monthly", "email": "cy@example.com"})
    sent = http.post(
        f"{path}/test", data={"csrf_token": csrf, "kind": "monthly", "email": "cy@example.com"}
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=tested")
    assert len(inbox.messages) == 1
    assert subject(inbox.messages[0]).startswith("[Test] Monthly report for shop.test: ")
    assert recipients_of(world.meta, site)[0].last_period is None
    other = http.post(
        f"{path}/test", data={"csrf_token": csrf, "kind": "weekly", "email": "cy@example.com"}
    )
    assert field_errors(other.text) == {"email": "Add the address to the list first."}
    alert = http.post(
        f"{path}/test", data={"csrf_token": csrf, "kind": "spike", "email": "cy@example.com"}
    )
    assert field_errors(alert.text) == {"email": "Only a report can be sent as a test."}
    removed = http.post(
        f"{path}/remove", data={"csrf_token": csrf, "kind": "monthly", "email": "cy@example.com"}
    )
    assert removed.status_code == 303
    assert recipients_of(world.meta, site) == []
    # Another site's people can't touch this list.
    stranger = world.user("eve@example.com")
    world.site("eve.test", stranger)
    eve, eve_csrf = sign_in_ui(world, "eve@example.com")
    refused = eve.post(path, data={"csrf_token": eve_csrf, "kind": "weekly", "email": "e@x.io"})
    assert refused.status_code == 404
    assert page_token(http, path)


def _recipient(kind: str, added: datetime, last: date | None = None) -> Recipient:
    return Recipient("s", kind, "a@b.c", "t", int(added.timestamp()), last)  # type: ignore[arg-type]


def test_when_each_report_is_due_in_the_site_s_timezone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # 09:00 there is 00:00 UTC
    # Monday 2026-11-30 00:30 UTC is 09:30 in Tokyo: last week's report is due.
    week = due("weekly", datetime(2026, 11, 30, 0, 30, tzinfo=UTC), tokyo)
    assert (week.first, week.last) == (date(2026, 11, 23), date(2026, 11, 29))
    assert week.previous == (date(2026, 11, 16), date(2026, 11, 22))
    assert week.at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    # ...and at 23:59 UTC on Sunday (08:59 Monday in Tokyo) it is the one before.
    early = due("weekly", datetime(2026, 11, 29, 23, 59, tzinfo=UTC), tokyo)
    assert (early.first, early.last) == (date(2026, 11, 16), date(2026, 11, 22))
    new_york = ZoneInfo("America/New_York")
    month = due("monthly", datetime(2026, 3, 1, 14, 0, tzinfo=UTC), new_york)  # 09:00 EST
    assert (month.first, month.last) == (date(2026, 2, 1), date(2026, 2, 28))
    assert month.previous == (date(2026, 1, 1), date(2026, 1, 31))
    before = due("monthly", datetime(2026, 3, 1, 13, 59, tzinfo=UTC), new_york)
    assert (before.first, before.last) == (date(2026, 1, 1), date(2026, 1, 31))
    assert before.previous == (date(2025, 12, 1), date(2025, 12, 31))
    # Sent once per period; an address added after the period was due waits.
    assert wants(_recipient("monthly", month.at - timedelta(seconds=1)), month)
    assert not wants(_recipient("monthly", month.at), month)
    assert not wants(_recipient("monthly", month.at - timedelta(days=9), month.first), month)
    assert wants(_recipient("monthly", month.at - timedelta(days=40), before.first), month)


def test_traffic_alerts_mail_a_spike_and_a_drop_once_in_12_hours(
    world: World,
    smtp: tuple[int, Inbox],  # noqa: F811
) -> None:
    _, inbox = smtp
    user = world.user(OWNER)
    site = world.site("shop.test", user)
    http, csrf = sign_in_ui(world, OWNER)
    path = f"/ui/sites/{site}/reports"
    alerts = f"{path}/alerts"
    bad = http.post(alerts, data={"csrf_token": csrf, "kind": "spike", "threshold": "lots"})
    assert bad.status_code == 400
    assert field_errors(bad.text) == {
        "threshold_spike": "Enter a whole number of visitors, or leave it blank (off)."
    }
    for kind, threshold in (("spike", "3"), ("drop", "10")):
        saved = http.post(alerts, data={"csrf_token": csrf, "kind": kind, "threshold": threshold})
        assert saved.status_code == 303, saved.text
        added = http.post(path, data={"csrf_token": csrf, "kind": kind, "email": "ops@example.com"})
        assert added.status_code == 303 and added.headers["location"].endswith("=added-alert")
    assert thresholds_of(world.meta, site) == {"spike": 3, "drop": 10}
    # 3 visitors now: Google 2, direct 1; /a 2, /b 1.
    key = world.key(user, site, scopes=("events:write",))
    client = world.bearer(key)
    for uid, page, referrer in (
        ("a", "/a", "https://www.google.com/"),
        ("b", "/a", "https://www.google.com/"),
        ("c", "/b", None),
    ):
        body = {"url": f"https://shop.test{page}", "user_id": uid, "referrer": referrer}
        assert client.post("/api/v1/pageviews", json=body).status_code == 202
    now = datetime.now(UTC)
    svc = world.live.services

    def check(at: datetime) -> int:
        svc.clock = lambda: at
        return asyncio.run(svc.check_alerts())

    # The site is new: no drop alert in its first 12 hours; the spike goes.
    assert check(now) == 1
    spike = inbox.messages[-1]
    assert subject(spike) == "Traffic spike on shop.test: 3 current visitors"
    text, html = parts(spike)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for line in (
        "3 visitors in the last 5 minutes: your alert is set at 3.",
        "Google 2",
        "Direct / None 1",
        "/a 2",
        "/b 1",
    ):
        assert line in lines, (line, text)
    assert lines[lines.index("Top sources now") + 1] == "Google 2"
    assert 'id="reading"' in html and ">3</p>" in html
    assert check(now + timedelta(minutes=1)) == 0  # quiet for 12 hours
    world.meta.execute(
        "UPDATE sites SET created_at = ? WHERE id = ?",
        ((now - timedelta(days=2)).isoformat().replace("+00:00", "Z"), site),
    )
    assert check(now + timedelta(minutes=2)) == 1  # 3 visitors in 12 hours, fewer than 10
    drop = inbox.messages[-1]
    assert subject(drop) == "Traffic drop on shop.test: 3 visitors in the last 12 hours"
    assert "3 visitors in the last 12 hours: fewer than your alert's 10." in parts(drop)[0]
    # 13 hours on: nobody is on the site now (no spike), and nobody came in 12 hours.
    assert check(now + timedelta(hours=13)) == 1
    assert (
        subject(inbox.messages[-1]) == "Traffic drop on shop.test: 0 visitors in the last 12 hours"
    )
    assert len(inbox.messages) == 3
    off = http.post(alerts, data={"csrf_token": csrf, "kind": "drop", "threshold": ""})
    assert off.status_code == 303
    assert thresholds_of(world.meta, site) == {"spike": 3}
    assert check(now + timedelta(days=2)) == 0
