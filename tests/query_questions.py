"""Seeded random stats questions as Query values (the compiler's whole grammar: every
metric and property, filter trees with every op and modifier, time buckets in three zones,
orders, pages, bounce_entry, pings_in_visits, revenue currencies) and seeded raw events
that such questions find. Used by the compiler's snapshot test (the DuckDB SQL text must
not change without a reason) and by the ClickHouse parity test (the same answers on both
engines)."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.query.model import COLUMNS, METRICS, And, Filter, FilterTree, Not, Or, Order, Query
from app.query.periods import Period, local_midnight_utc
from app.query.run import Result
from app.storage.events import COLUMNS as EVENT_COLUMNS

SITES = {"utc.example": "UTC", "ktm.example": "Asia/Kathmandu", "ny.example": "America/New_York"}
# The events' days: America/New_York moves its clocks on 2026-03-08 (in the range).
FIRST_DAY, LAST_DAY = date(2026, 2, 20), date(2026, 3, 20)
# Rollup components and the bounce_entry denominator: metrics only rollups and v2 ask for.
COMPONENTS = (
    "bounces", "duration", "event_duration", "session_pageviews", "engaged_ms",
    "engaged_visitors", "scroll_sum", "scroll_count", "average_revenue",
)  # fmt: skip
PROPERTIES = (*COLUMNS, "prop:plan", "prop:url", "prop:nope")
OPS = ("is", "is_not", "equals", "equals_not", "contains", "contains_not", "matches", "matches_not")
VALUES = (
    "/", "/blog/*", "/blog/a", "BLOG", "/DOCS", "pro", "free", "Signup", "GB", "US", "Google",
    "Hacker News", "https://github.com/*", "*", "", "^/d", "a|b", "x'y", "%", "_", "\\", "ü",
    "/é/Ünï", "Chrome", "Desktop", "Mobile", "Direct", "o$", "example.com", "newsletter",
    "Outbound Link: Click", "engagement", "pageview", "EUR",
)  # fmt: skip
PAGES = ("/", "/blog/a", "/blog/b", "/docs", "/pricing", "/é/ünï", "/a_b%", "/x'y")
EVENTS = ("Signup", "Outbound Link: Click", "Download")
REFERRERS: tuple[tuple[str | None, str | None, str | None], ...] = (
    (None, None, "Direct"),
    ("google.com", "Google", "Organic Search"),
    ("news.ycombinator.com", "Hacker News", "Organic Social"),
    ("github.com", "GitHub", "Referral"),
    ("newsletter", "newsletter", "Email"),
)
AGENTS = (
    ("Desktop", "Chrome", "130.0", "Mac", "10.15", "Desktop"),
    ("Mobile", "Safari", "18.0", "iOS", "18.1", "Mobile"),
    ("Desktop", "Firefox", "131.0", "Linux", None, "Desktop"),
    ("Tablet", "Chrome", "129.0", "Android", "14", "Tablet"),
)
PLACES = (("GB", "GB-ENG", "2643743"), ("US", "US-NY", "5128581"), ("DE", None, None), (None,) * 3)


def events(seed: int = 11) -> list[tuple[Any, ...]]:
    """EVENT_SCHEMA rows of the three sites: visits as the pipeline writes them (visit
    attributes and entry page on every event, the site-local day, pings after pageviews),
    with ties in time within a visit (imported data has whole seconds), props, revenue in
    two currencies, and NULLs where the pipeline writes them."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    session = 0
    for site, zone_name in SITES.items():
        zone = ZoneInfo(zone_name)
        day = FIRST_DAY
        while day <= LAST_DAY:
            for _ in range(rng.randint(3, 14)):
                session += 1
                visitor = rng.randint(1, 60) * 7919 - 2**40
                midnight = local_midnight_utc(day, zone)
                start = midnight + timedelta(seconds=rng.randint(0, 86_399 - 3_600))
                rows += _visit(rng, site, zone, start, visitor, session)
            day += timedelta(days=1)
    return rows


def _visit(
    rng: random.Random, site: str, zone: ZoneInfo, start: datetime, visitor: int, session: int
) -> list[tuple[Any, ...]]:
    referrer, source, channel = rng.choice(REFERRERS)
    device, browser, version, os_, os_version, screen = rng.choice(AGENTS)
    country, region, city = rng.choice(PLACES)
    utm = rng.random() < 0.2
    entry = rng.choice(PAGES)
    common: dict[str, Any] = {
        "site_id": site,
        "visitor_id": visitor,
        "session_id": session,
        "entry_page": entry,
        "referrer": referrer,
        "source": source,
        "channel": channel,
        "utm_source": "newsletter" if utm else None,
        "utm_medium": "email" if utm else None,
        "utm_campaign": rng.choice(["launch", "Launch", None]) if utm else None,
        "utm_content": None,
        "utm_term": None,
        "device": device,
        "browser": browser,
        "browser_version": version,
        "os": os_,
        "os_version": os_version,
        "screen": screen,
        "country": country,
        "region": region,
        "city": city,
        "user_key": None,
    }
    out = []
    at = start.replace(microsecond=rng.randint(0, 999_999) if rng.random() < 0.7 else 0)
    page = entry
    for i in range(rng.choice([1, 1, 2, 3, 5])):
        if i:
            page = rng.choice(PAGES)
            if rng.random() > 0.2:  # else the same second as the last event (a tie)
                at += timedelta(seconds=rng.randint(1, 400), microseconds=rng.randint(0, 999))
        host = rng.choice(["example.com", "www.example.com"])
        out.append(_row(common, zone, at, "pageview", host, page, interactive=True))
        roll = rng.random()
        if roll < 0.25:
            name = rng.choice(EVENTS)
            props: list[tuple[str, str]] | None = [("plan", rng.choice(["pro", "free", "Pro"]))]
            revenue = currency = None
            if name == "Outbound Link: Click":
                props = [("url", rng.choice(["https://github.com/x", "https://x.org/"]))]
            elif name == "Signup" and rng.random() < 0.5:
                revenue = Decimal(rng.randint(1, 99_999)) / 100
                currency = rng.choice(["EUR", "USD"])
            at += timedelta(seconds=rng.randint(0, 30))
            interactive = rng.random() < 0.8
            out.append(
                _row(common, zone, at, name, host, page, interactive, props, revenue, currency)
            )
        if roll > 0.4:  # an engagement ping: time and scroll on the page
            at += timedelta(seconds=rng.randint(1, 120), microseconds=rng.randint(0, 999_999))
            ping = _row(common, zone, at, "engagement", host, page, interactive=False)
            ping["engagement_ms"] = rng.randint(100, 90_000)
            ping["scroll_depth"] = rng.choice([None, 0, 25, 50, 100, rng.randint(0, 100)])
            out.append(ping)
    return [tuple(r[c] for c in EVENT_COLUMNS) for r in out]


def _row(
    common: dict[str, Any],
    zone: ZoneInfo,
    at: datetime,
    name: str,
    host: str,
    page: str,
    interactive: bool,
    props: list[tuple[str, str]] | None = None,
    revenue: Decimal | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    return {
        **common,
        "ts": at,
        "day": at.replace(tzinfo=UTC).astimezone(zone).date(),
        "name": name,
        "hostname": host,
        "pathname": page,
        "props": props,
        "revenue": revenue,
        "currency": currency,
        "interactive": interactive,
        "engagement_ms": None,
        "scroll_depth": None,
    }


def question(rng: random.Random) -> Query:
    """One random question over SITES' data."""
    site = rng.choice(list(SITES))
    site_zone = SITES[site]
    zone_name = rng.choice([site_zone, site_zone, "UTC", "Asia/Kathmandu", "America/New_York"])
    dims: list[str] = list(rng.sample(PROPERTIES, rng.choice([0, 0, 1, 1, 1, 2])))
    interval = rng.choice([None, None, "minute", "hour", "day", "week", "month"])
    period = _period(rng, ZoneInfo(zone_name), short=interval == "minute")
    if interval:
        dims.insert(rng.randint(0, len(dims)), f"time:{interval}")
    metrics = rng.sample([*METRICS, *COMPONENTS], rng.randint(1, 4))
    filters = tuple(_tree(rng) for _ in range(rng.choice([0, 0, 1, 1, 2, 3])))
    properties = [d for d in dims if not d.startswith("time:")]
    order: tuple[Order, ...] = ()
    if rng.random() < 0.3:
        keys = [*metrics, *properties, *(["time"] if interval else [])]
        order = tuple(
            Order(key, rng.random() < 0.5, rng.random() < 0.3)
            for key in rng.sample(keys, rng.randint(1, min(2, len(keys))))
        )
    limit = rng.choice([None, None, 1, 3, 10]) if dims else None
    currency = rng.choice([None, None, None, "EUR", "USD"])
    return Query(
        site_id=site,
        period=period,
        metrics=tuple(metrics),
        dimensions=tuple(dims),
        filters=filters,
        order_by=order,
        limit=limit,
        offset=rng.choice([0, 0, 1, 2]) if limit else 0,
        site_timezone=rng.choice([site_zone, site_zone, None]),
        bounce_entry=_leaf(rng, "entry_page") if rng.random() < 0.1 else None,
        pings_in_visits=rng.random() < 0.7,
        revenue_currency=currency,
        revenue_events=tuple(rng.sample(EVENTS, rng.randint(0, 2))) if currency else (),
    )


def _period(rng: random.Random, zone: ZoneInfo, short: bool) -> Period:
    if short or rng.random() < 0.15:  # a day, or a rolling 24 hours
        day = FIRST_DAY + timedelta(days=rng.randint(0, (LAST_DAY - FIRST_DAY).days))
        if rng.random() < 0.5:
            end = local_midnight_utc(day, zone) + timedelta(hours=rng.randint(1, 23))
            start = end - timedelta(hours=24)
            first = start.replace(tzinfo=UTC).astimezone(zone).date()
            return Period(
                preset="24h", timezone=zone.key, first_day=first, last_day=day,
                start=start, end=end, rolling=True,
            )  # fmt: skip
        first = last = day
    else:
        first = FIRST_DAY + timedelta(days=rng.randint(-3, 20))
        last = first + timedelta(days=rng.randint(0, 40))
    return Period(
        preset="custom",
        timezone=zone.key,
        first_day=first,
        last_day=last,
        start=local_midnight_utc(first, zone),
        end=local_midnight_utc(last + timedelta(days=1), zone),
    )


def _tree(rng: random.Random, depth: int = 0) -> FilterTree:
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        clauses = tuple(_tree(rng, depth + 1) for _ in range(rng.randint(1, 3)))
        return And(clauses) if rng.random() < 0.5 else Or(clauses)
    if depth < 2 and roll < 0.22:
        return Not(_tree(rng, depth + 1))
    return _leaf(rng, rng.choice(PROPERTIES))


def _leaf(rng: random.Random, dimension: str) -> Filter:
    op = rng.choice(OPS)
    values = tuple(rng.sample(VALUES, rng.randint(1, 3)))
    if op.startswith("matches"):  # patterns RE2 takes: a refused one is a 400 before SQL
        values = tuple(v for v in values if v not in ("\\", "*")) or ("^/d",)
    return Filter(
        op,  # type: ignore[arg-type]
        dimension,
        values,
        case_sensitive=rng.random() < 0.7 or op.startswith("matches"),
        missing=rng.random() < 0.15,
    )


def questions(seed: int, n: int) -> list[Query]:
    rng = random.Random(seed)
    return [question(rng) for _ in range(n)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b) and type(a) is type(b)


def differences(duck: Result, ch: Result) -> list[str]:
    """How two answers to one question differ (none: equal, fractions to 1e-9)."""
    found = []
    if duck.total_rows != ch.total_rows:
        found.append(f"total_rows {duck.total_rows} != {ch.total_rows}")
    if len(duck.rows) != len(ch.rows):
        found.append(f"{len(duck.rows)} rows != {len(ch.rows)}")
    for i, (a, b) in enumerate(zip(duck.rows, ch.rows, strict=False)):
        if a.keys() != b.keys() or not all(_same(a[k], b[k]) for k in a):
            found.append(f"row {i}: {a} != {b}")
            break
    return found
