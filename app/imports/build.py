"""Source records -> the site's event rows, by the rules live hits follow.

Every source parser yields Records: one page view or custom event with its source's
visitor (and maybe session) id. Here they get what the ingest pipeline gives a hit: the
site-local day, a visitor id valid for that day (a keyed hash of the source's id with a
key made for this import and never stored, so the source's ids can't be recovered),
sessions that end after 30 minutes of inactivity and at the site's midnight, and the
visit attributes of each session's first event (entry page, referrer, source, channel,
UTM, device, geo) copied onto its every event, enriched by the ingest code itself."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from app.ingest.enrich import Agent, cached_agent_parser, parse_page, referrer_host
from app.ingest.identity import SESSION_TIMEOUT_US, day_number
from app.ingest.referrers import classify
from app.storage.events import Row
from app.storage.imports import MAX_SESSIONS, session_id


class Record(NamedTuple):
    """One event as a source describes it (what it lacks stays None)."""

    ts_us: int  # UTC, microseconds since the epoch
    visitor: str  # the source's visitor id: hashed with the import's key, never stored
    session: str | None  # the source's visit id; None: sessions by 30 minutes of inactivity
    name: str  # "pageview" or a custom event's name
    url: str  # the page's URL: http(s)://host/path?query
    referrer: str | None = None  # a URL or a bare host
    user_agent: str | None = None  # parsed as live hits' are (bots then skipped)
    agent: Agent | None = None  # device, browser, OS as the source named them
    screen: str | None = None  # Plausible's screen class
    country: str | None = None
    region: str | None = None
    city: str | None = None
    props: tuple[tuple[str, str], ...] = ()
    revenue: Decimal | None = None
    currency: str | None = None


class Built(NamedTuple):
    rows: list[Row]  # EVENT_SCHEMA tuples, ts in microseconds and day as a day number
    day_events: dict[date, int]
    sessions: int


class LocalDays:
    """The site-local day of a UTC time, with the last day's bounds cached (sources are
    mostly in time order)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._lo = self._hi = 0
        self._day = date(1970, 1, 1)

    def of(self, ts_us: int) -> date:
        if not self._lo <= ts_us < self._hi:
            local = datetime.fromtimestamp(ts_us / 1e6, UTC).astimezone(self.zone)
            day = local.date()
            nxt = day + timedelta(days=1)
            start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.zone)
            self._lo, self._hi = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
            self._day = day
        return self._day


def _visitor_hash(key: bytes) -> Callable[[str, date], int]:
    def visitor(source_id: str, day: date) -> int:
        material = f"{source_id}\x00{day.isoformat()}".encode()
        digest = hashlib.blake2b(material, digest_size=8, key=key).digest()
        return int.from_bytes(digest, "big", signed=True)

    return visitor


def _visit_attrs(rec: Record, agent: Agent | None, pathname: str) -> tuple[Any, ...]:
    """The visit attributes of a session that starts with rec (VISIT_COLUMNS' order)."""
    page = parse_page(rec.url, False)
    host = page.hostname if page else None
    src = classify(
        referrer_host(rec.referrer),
        host,
        page.utm_source if page else None,
        page.utm_medium if page else None,
        page.utm_campaign if page else None,
        page.ref if page else None,
        page.click_id if page else None,
    )
    utm = (
        (page.utm_source, page.utm_medium, page.utm_campaign, page.utm_content, page.utm_term)
        if page
        else (None,) * 5
    )
    agent_cols = agent[1:] if agent else (None,) * 5
    return (
        pathname,
        src.referrer,
        src.source,
        src.channel,
        *utm,
        *agent_cols,
        rec.screen,
        rec.country,
        rec.region,
        rec.city,
    )


def build_rows(
    records: Iterable[Record],
    site_id: str,
    zone: ZoneInfo,
    seq: int,
    key: bytes,
    skipped: Counter[str],
    keep_day: Callable[[date], bool] = lambda d: True,
) -> Built:
    """The event rows of these records (bots and unusable URLs are counted in `skipped`,
    and so are records on days keep_day refuses)."""
    days = LocalDays(zone)
    visitor = _visitor_hash(key)
    parse_ua = cached_agent_parser(4096)
    keyed: list[tuple[int, str, int, int, Record]] = []
    for rec in records:
        day = days.of(rec.ts_us)
        if not keep_day(day):
            skipped["day already has native data (--overlap skip)"] += 1
            continue
        keyed.append(
            (visitor(rec.visitor, day), rec.session or "", rec.ts_us, day_number(day), rec)
        )
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    rows: list[Row] = []
    day_events: Counter[date] = Counter()
    n = 0
    last: tuple[int, str, int] | None = None
    attrs: tuple[Any, ...] = ()
    for vid, sess, ts, dayno, rec in keyed:
        page = parse_page(rec.url, False)
        if page is None:
            skipped["not an http(s) page URL"] += 1
            continue
        agent = rec.agent
        if rec.user_agent:
            parsed = parse_ua(rec.user_agent)
            if parsed.bot:
                skipped["bot user agent"] += 1
                continue
            agent = agent or parsed
        new = (
            last is None
            or last[0] != vid
            or last[1] != sess
            or (not sess and ts - last[2] > SESSION_TIMEOUT_US)
        )
        if new:
            n += 1
            if n > MAX_SESSIONS:
                raise ValueError("too many sessions in one import")
            attrs = _visit_attrs(rec, agent, page.pathname)
        last = (vid, sess, ts)
        rows.append(
            (
                site_id,
                ts,
                dayno,
                rec.name,
                vid,
                session_id(seq, n),
                page.hostname,
                page.pathname,
                *attrs,
                list(rec.props) if rec.props else None,
                rec.revenue,
                rec.currency if rec.revenue is not None else None,
                True,
                None,
                None,
                None,
            )
        )
        day_events[date(1970, 1, 1) + timedelta(days=dayno)] += 1
    return Built(rows, dict(day_events), n)
