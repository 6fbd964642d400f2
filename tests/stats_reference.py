"""An independent answer key for the stats APIs: generated logical events, and the metric
definitions of SPEC §1/§3 restated in plain Python over them (no SQL, no pipeline code)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import CHROME_UA, IPHONE_UA

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
NOW = datetime(2026, 3, 20, 15, 30, tzinfo=UTC)
SITES = [
    ("utc.example", "UTC"),
    ("ny.example", "America/New_York"),
    ("ktm.example", "Asia/Kathmandu"),
]

# What each input is enriched to, worked out by hand.
AGENTS = {
    CHROME_UA: {
        "device": "desktop",
        "browser": "Chrome",
        "browser_version": "130.0",
        "os": "macOS",
        "os_version": "10.15",
    },
    IPHONE_UA: {
        "device": "mobile",
        "browser": "Safari",
        "browser_version": "17.4",
        "os": "iOS",
        "os_version": "17.4",
    },
    FIREFOX_UA: {
        "device": "desktop",
        "browser": "Firefox",
        "browser_version": "130.0",
        "os": "Linux",
        "os_version": None,
    },
}
NETWORKS = {"81.2.69.": "GB", "8.8.8.": "US", "2a02:8070::": "DE"}
REFERRERS = {
    None: {"referrer": None, "source": None, "channel": "Direct"},
    "https://www.google.com/": {
        "referrer": "google.com",
        "source": "Google",
        "channel": "Organic Search",
    },
    "https://news.ycombinator.com/": {
        "referrer": "news.ycombinator.com",
        "source": "Hacker News",
        "channel": "Organic Social",
    },
    "https://blog.example.net/p": {
        "referrer": "blog.example.net",
        "source": "blog.example.net",
        "channel": "Referral",
    },
}
UTM = "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
PATHS = ["/", "/blog/a", "/blog/b", "/docs", "/pricing"]


@dataclass
class Event:
    site: str  # domain
    zone: ZoneInfo
    ts: datetime  # aware UTC
    name: str
    ip: str
    ua: str
    path: str
    referrer: str | None = None
    utm: bool = False
    props: dict[str, str] = field(default_factory=dict)
    revenue: Decimal | None = None
    interactive: bool = True
    engagement_ms: int | None = None
    scroll_depth: int | None = None
    # derived by the reference
    session: tuple[Any, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def day(self) -> date:
        return self.ts.astimezone(self.zone).date()

    @property
    def visitor(self) -> tuple[str, date, str, str]:
        return (self.site, self.day, self.ip, self.ua)

    @property
    def url(self) -> str:
        return f"https://{self.site}{self.path}{UTM if self.utm else ''}"


def generate(seed: int = 7) -> list[Event]:
    """Visitors with sessions over ~80 days before NOW, some days empty, on three sites."""
    rng = random.Random(seed)
    events: list[Event] = []
    for domain, tz in SITES:
        zone = ZoneInfo(tz)
        today = NOW.astimezone(zone).date()
        for back in range(80, -1, -1):
            day = today - timedelta(days=back)
            if rng.random() < 0.15:
                continue  # an empty day: zero-filled buckets
            for _ in range(rng.randint(1, 4)):
                events += _visitor(rng, domain, zone, day)
    events = [e for e in events if e.ts < NOW]
    events.sort(key=lambda e: e.ts)
    derive(events)
    return events


def _visitor(rng: random.Random, domain: str, zone: ZoneInfo, day: date) -> list[Event]:
    prefix, _ = rng.choice(list(NETWORKS.items()))
    ip = f"{prefix}{rng.randint(1, 9)}"
    ua = rng.choice(list(AGENTS))
    start = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
        minutes=rng.randint(0, 23 * 60 + 50)
    )
    out = []
    for _ in range(rng.choice([1, 1, 2])):
        ref = rng.choice(list(REFERRERS))
        utm = rng.random() < 0.2
        t = start.astimezone(UTC)
        for n in range(rng.choice([1, 1, 2, 3, 4])):
            path = rng.choice(PATHS)
            out.append(
                Event(
                    domain,
                    zone,
                    t,
                    "pageview",
                    ip,
                    ua,
                    path,
                    referrer=ref if n == 0 else None,
                    utm=utm and n == 0,
                )
            )
            if rng.random() < 0.4:
                out.append(
                    Event(
                        domain,
                        zone,
                        t + timedelta(seconds=rng.randint(5, 50)),
                        "engagement",
                        ip,
                        ua,
                        path,
                        engagement_ms=rng.randint(500, 60_000),
                        scroll_depth=rng.randint(0, 100),
                    )
                )
            if rng.random() < 0.15:
                plan = rng.choice(["free", "pro"])
                out.append(
                    Event(
                        domain,
                        zone,
                        t + timedelta(seconds=55),
                        "Signup",
                        ip,
                        ua,
                        path,
                        props={"plan": plan},
                        revenue=Decimal(rng.choice([9, 19])) if plan == "pro" else None,
                    )
                )
            if rng.random() < 0.08:
                out.append(
                    Event(
                        domain,
                        zone,
                        t + timedelta(seconds=57),
                        "Autoplay",
                        ip,
                        ua,
                        path,
                        interactive=False,
                    )
                )
            if rng.random() < 0.08:
                url = rng.choice(["https://github.com/x", "https://other.example/"])
                out.append(
                    Event(
                        domain,
                        zone,
                        t + timedelta(seconds=58),
                        "Outbound Link: Click",
                        ip,
                        ua,
                        path,
                        props={"url": url},
                    )
                )
            t += timedelta(minutes=rng.randint(1, 25))
        start = t.astimezone(zone) + timedelta(minutes=rng.randint(31, 90))
    return out


def derive(events: list[Event]) -> None:
    """Sessions (30-minute gaps, within one visitor-day) and visit attributes. Engagement
    pings with no open session are dropped, as the pipeline drops them."""
    last: dict[tuple[Any, ...], tuple[datetime, tuple[Any, ...], dict[str, Any]]] = {}
    counter = 0
    kept = []
    for e in events:  # in time order
        prev = last.get(e.visitor)
        if prev is None or e.ts - prev[0] > timedelta(minutes=30):
            if e.name == "engagement":
                continue
            counter += 1
            country = next(cc for prefix, cc in NETWORKS.items() if e.ip.startswith(prefix))
            attrs = {
                **AGENTS[e.ua],
                **REFERRERS[e.referrer],
                "country": country,
                "entry_page": e.path,
                "utm_source": None,
                "utm_medium": None,
                "utm_campaign": None,
            }
            if e.utm:
                attrs.update(
                    source="newsletter",
                    channel="Email",
                    utm_source="newsletter",
                    utm_medium="email",
                    utm_campaign="launch",
                )
            prev = (e.ts, (e.visitor, counter), attrs)
        e.session, e.attrs = prev[1], prev[2]
        last[e.visitor] = (e.ts, prev[1], prev[2])
        kept.append(e)
    events[:] = kept
    exits: dict[tuple[Any, ...], str] = {}
    for e in events:
        if e.name == "pageview":
            exits[e.session] = e.path
    for e in events:
        e.attrs = {**e.attrs, "exit_page": exits.get(e.session)}


EVENT_DIMENSIONS = ("event", "page", "exit_link")


def value(e: Event, dimension: str) -> Any:
    """An event's value for a dimension, as the API names it."""
    if dimension == "page":
        return e.path
    if dimension == "event":
        return e.name
    if dimension == "hostname":
        return e.site
    if dimension == "exit_link":
        return e.props.get("url") if e.name == "Outbound Link: Click" else None
    if dimension.startswith("prop:"):
        return e.props.get(dimension[5:])
    return e.attrs.get(dimension)


def is_event_dimension(dimension: str) -> bool:
    return dimension in EVENT_DIMENSIONS or dimension.startswith("prop:")


Filters = list[tuple[str, list[str]]]
Pred = Callable[[Event], bool]


def matches(e: Event, dimension: str, values: Iterable[str]) -> bool:
    v = value(e, dimension)
    return v is not None and any(fnmatchcase(v, pattern) for pattern in values)


def where(filters: Filters, goal_free: bool = False) -> Pred:
    kept = [(d, v) for d, v in filters if not (goal_free and is_event_dimension(d))]
    return lambda e: all(matches(e, d, v) for d, v in kept)


def in_range(events: list[Event], site: str, start: datetime, end: datetime) -> list[Event]:
    return [e for e in events if e.site == site and start <= e.ts < end]


def metrics(scope: list[Event], hit: Pred, wanted: Iterable[str], total: Pred) -> dict[str, Any]:
    """Every metric for one group. `scope`: the site's events in range; `hit`: which of them
    the group counts; `total`: the conversion-rate denominator's events."""
    hits = [e for e in scope if hit(e)]
    real = [e for e in hits if e.name != "engagement"]
    sessions = {e.session for e in real}
    whole: dict[tuple[Any, ...], list[Event]] = defaultdict(list)
    for e in scope:
        if e.session in sessions:
            whole[e.session].append(e)
    pv = {s: sum(1 for e in es if e.name == "pageview") for s, es in whole.items()}
    ic = {
        s: sum(1 for e in es if e.name not in ("pageview", "engagement") and e.interactive)
        for s, es in whole.items()
    }
    span = {
        s: (max(e.ts for e in es) - min(e.ts for e in es)).total_seconds()
        for s, es in whole.items()
    }
    # Plausible's sessions: engagement events never lengthen one (session/cache_store.ex).
    event_span = {
        s: (
            max(e.ts for e in es if e.name != "engagement")
            - min(e.ts for e in es if e.name != "engagement")
        ).total_seconds()
        for s, es in whole.items()
    }
    visits = len(sessions)
    engaged = [e for e in hits if e.name == "engagement"]
    depth: dict[tuple[Any, ...], int] = {}
    for e in engaged:
        if e.scroll_depth is not None:
            key = (e.visitor, e.path)
            depth[key] = max(depth.get(key, -1), e.scroll_depth)
    totals = len({e.visitor for e in scope if e.name != "engagement" and total(e)})
    visitors = len({e.visitor for e in real})
    bounces = sum(1 for s in sessions if pv[s] <= 1 and ic[s] == 0)
    out = {
        "visitors": visitors,
        "pageviews": sum(1 for e in real if e.name == "pageview"),
        "events": len(real),
        "revenue": round(float(sum(e.revenue or 0 for e in real)), 2),
        "visits": visits,
        "bounce_rate": round(100 * bounces / visits, 1) if visits else 0.0,
        "visit_duration": round(sum(span[s] for s in sessions) / visits) if visits else 0,
        "views_per_visit": round(sum(pv[s] for s in sessions) / visits, 2) if visits else 0.0,
        # Plausible v2's: a whole-number bounce rate, durations without engagement events.
        "v2_bounce_rate": round(100 * bounces / visits) if visits else 0,
        "v2_visit_duration": round(sum(event_span[s] for s in sessions) / visits) if visits else 0,
        "time_on_page": round(
            sum(e.engagement_ms or 0 for e in engaged) / 1000 / len({e.visitor for e in engaged})
        )
        if engaged
        else 0,
        "scroll_depth": round(sum(depth.values()) / len(depth)) if depth else None,
        "conversion_rate": round(100 * visitors / totals, 2) if totals else 0.0,
    }
    return {m: out[m] for m in wanted}


def aggregate(scope: list[Event], filters: Filters, wanted: Iterable[str]) -> dict[str, Any]:
    return metrics(scope, where(filters), wanted, where(filters, goal_free=True))


def breakdown(
    scope: list[Event], prop: str, filters: Filters, wanted: list[str]
) -> list[dict[str, Any]]:
    """Rows per value, as the API sorts them: first metric desc, then value asc (nulls last)."""
    base = where(filters)
    groups = {value(e, prop) for e in scope if e.name != "engagement" and base(e)}
    rows = []
    for g in groups:

        def in_group(e: Event, g: Any = g) -> bool:
            return base(e) and value(e, prop) == g

        def total(e: Event, g: Any = g) -> bool:
            same = is_event_dimension(prop) or value(e, prop) == g
            return same and where(filters, goal_free=True)(e)

        rows.append({"value": g, **metrics(scope, in_group, wanted, total)})
    return sorted(rows, key=lambda r: (-r[wanted[0]], r["value"] is None, r["value"] or ""))


def buckets(
    scope: list[Event],
    zone: ZoneInfo,
    starts: list[datetime],
    interval: str,
    filters: Filters,
    wanted: list[str],
) -> list[dict[str, Any]]:
    """One row per local bucket start, zeros where empty."""

    def bucket(e: Event) -> datetime:
        local = e.ts.astimezone(zone).replace(tzinfo=None)
        if interval == "hour":
            return local.replace(minute=0, second=0, microsecond=0)
        day = local.date()
        if interval == "week":
            day -= timedelta(days=day.weekday())
        elif interval == "month":
            day = day.replace(day=1)
        return datetime(day.year, day.month, day.day)

    base = where(filters)
    rows = []
    for start in starts:

        def in_bucket(e: Event, start: datetime = start) -> bool:
            return base(e) and bucket(e) == start

        def total(e: Event, start: datetime = start) -> bool:
            return bucket(e) == start and where(filters, goal_free=True)(e)

        rows.append(metrics(scope, in_bucket, wanted, total))
    return rows
