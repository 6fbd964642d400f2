"""Datasets for the dashboard's browser tests and screenshots, loaded through the real
ingest pipeline (enrich, identify, sessionize; then one append), with times in the past.

`small_visits` is the hand-computed one: tests/browser/test_dashboard.py states its
figures next to it. `realistic_visits` is a few thousand events over 30 days for the
screenshots."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from tests.conftest import CHROME_UA, IPHONE_UA, LiveServer

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
GOOGLE = "https://www.google.com/"
HN = "https://news.ycombinator.com/"
BLOG = "https://blog.example.net/p"


@dataclass
class Visit:
    start: datetime
    ip: str
    ua: str
    referrer: str | None
    # (seconds after start, event name, path, props)
    events: list[tuple[int, str, str, dict[str, str]]]
    query: str = ""
    screen: int | None = None
    # event index -> (amount, ISO currency): the revenue that event carries
    revenue: dict[int, tuple[str, str]] = field(default_factory=dict)


def pv(at: int, path: str) -> tuple[int, str, str, dict[str, str]]:
    return (at, "pageview", path, {})


def day_start(now: datetime, days_ago: int) -> datetime:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def small_visits(now: datetime) -> list[Visit]:
    """Nine visits by nine visitors (UTC site): four today, two yesterday, one 8 days ago,
    two 40 days ago (the 30-day period's previous period). Today's visits end at least
    5 minutes before `now` when `now` is 12 minutes or more after midnight (UTC)."""
    today = max(now - timedelta(hours=3), day_start(now, 0) + timedelta(minutes=1))
    yesterday = day_start(now, 1) + timedelta(hours=12)
    return [
        Visit(
            today,
            "81.2.69.10",
            CHROME_UA,
            GOOGLE,
            [pv(0, "/"), pv(60, "/pricing"), (90, "Signup", "/pricing", {})],
        ),
        Visit(today + timedelta(minutes=1), "8.8.8.20", IPHONE_UA, GOOGLE, [pv(0, "/blog/a")]),
        Visit(today + timedelta(minutes=2), "2a02:8070::30", FIREFOX_UA, HN, [pv(0, "/")]),
        Visit(
            today + timedelta(minutes=3),
            "8.8.8.40",
            CHROME_UA,
            None,
            [pv(0, "/docs"), pv(30, "/pricing"), pv(150, "/")],
        ),
        Visit(yesterday, "81.2.69.50", CHROME_UA, GOOGLE, [pv(0, "/")]),
        Visit(
            yesterday + timedelta(minutes=5),
            "2a02:8070::60",
            IPHONE_UA,
            BLOG,
            [pv(0, "/blog/b"), pv(40, "/")],
        ),
        Visit(day_start(now, 8) + timedelta(hours=10), "8.8.8.70", CHROME_UA, HN, [pv(0, "/")]),
        Visit(
            day_start(now, 40) + timedelta(hours=9),
            "81.2.69.80",
            FIREFOX_UA,
            GOOGLE,
            [pv(0, "/"), pv(100, "/docs")],
        ),
        Visit(
            day_start(now, 40) + timedelta(hours=11),
            "8.8.8.90",
            CHROME_UA,
            None,
            [pv(0, "/pricing")],
        ),
    ]


def load(live: LiveServer, site_id: str, visits: list[Visit]) -> int:
    """Every visit's events through the pipeline in time order; returns the rows stored."""
    svc = live.services
    site = svc.sites.by_id(site_id)
    assert site is not None
    hits = []
    for v in visits:
        for index, (offset, name, path, props) in enumerate(v.events):
            at = v.start + timedelta(seconds=offset)
            money = v.revenue.get(index)
            hit = Hit(
                revenue=(Decimal(money[0]), money[1]) if money else None,
                name=name,
                url=f"https://{site.domain}{path}{v.query}",
                site_id=site_id,
                referrer=v.referrer,
                props=tuple(props.items()),
                screen_width=v.screen,
            )
            hits.append((at, hit, Client(v.ip, v.ua)))
    hits.sort(key=lambda h: h[0])
    rows = []
    for at, hit, client in hits:
        row = svc.ingest.build(hit, site, client, int(at.timestamp() * 1e6))
        assert not isinstance(row, Drop), (hit, row)
        rows.append(row)
    svc.events.append(rows)
    return len(rows)


ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36"
)
WINDOWS_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)
SAFARI_MAC_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
IPAD_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
AGENTS = [
    (CHROME_UA, 1440, 30),
    (WINDOWS_UA, 1920, 18),
    (IPHONE_UA, 390, 22),
    (ANDROID_UA, 412, 12),
    (SAFARI_MAC_UA, 1512, 9),
    (FIREFOX_UA, 1366, 6),
    (IPAD_UA, 820, 3),
]
# First octets whose whole /16 the offline database places in one country.
NETWORKS = [
    ("8.8", 30),
    ("81.2", 12),
    ("77.1", 11),
    ("90.1", 8),
    ("24.48", 6),
    ("145.1", 5),
    ("1.128", 4),
    ("133.1", 4),
    ("200.147", 3),
    ("117.192", 3),
    ("151.1", 3),
    ("2.1", 2),
    ("85.1", 2),
    ("41.1", 1),
    ("195.1", 1),
]
SOURCES = [
    (GOOGLE, 34),
    (None, 24),
    (HN, 9),
    (BLOG, 4),
    ("https://duckduckgo.com/", 6),
    ("https://www.bing.com/", 4),
    ("https://t.co/x", 5),
    ("https://github.com/avocet", 7),
    ("https://www.reddit.com/r/selfhosted", 5),
    ("https://www.linkedin.com/feed", 2),
]
PAGES = [
    ("/", 40),
    ("/pricing", 12),
    ("/blog/self-hosted-analytics", 10),
    ("/docs", 9),
    ("/docs/install", 7),
    ("/blog/privacy-by-design", 6),
    ("/features", 6),
    ("/about", 3),
    ("/changelog", 3),
    ("/docs/api", 4),
]
CAMPAIGNS = [
    "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-launch",
    "?utm_source=mastodon&utm_medium=social&utm_campaign=spring-launch",
]


def _pick(rng: random.Random, table: list[tuple[object, int]]) -> object:
    return rng.choices([t[0] for t in table], weights=[t[1] for t in table])[0]


def realistic_visits(now: datetime, visits_per_day: int = 110, days: int = 30) -> list[Visit]:
    """A growing site with a weekly rhythm: several sources, countries and devices, some
    signups, outbound clicks and downloads."""
    rng = random.Random(18)
    shop = random.Random(27)
    out = []
    n = 0
    for days_ago in range(days + 30, -1, -1):
        start = day_start(now, days_ago)
        weekday = start.weekday()
        trend = 0.65 + 0.35 * (days + 30 - days_ago) / (days + 30)
        count = int(
            visits_per_day * trend * (0.72 if weekday >= 5 else 1.0) * rng.uniform(0.85, 1.15)
        )
        limit = now - timedelta(minutes=1)
        for _ in range(count):
            hour = min(23, max(0, int(rng.gauss(14, 4))))
            at = start + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
            if at >= limit:
                continue
            n += 1
            ua, screen, _ = rng.choices(AGENTS, weights=[a[2] for a in AGENTS])[0]
            net = str(_pick(rng, NETWORKS))  # type: ignore[arg-type]
            ip = (
                f"{net}.{n // 250 % 250 + 1}.{n % 250 + 1}"
                if net.count(".") == 1
                else f"{net}.{n % 250 + 1}"
            )
            ref = _pick(rng, SOURCES)  # type: ignore[arg-type]
            path = str(_pick(rng, PAGES))  # type: ignore[arg-type]
            events = [pv(0, path)]
            t = 0
            for _ in range(rng.choices([0, 1, 2, 3, 5], weights=[45, 25, 15, 10, 5])[0]):
                t += rng.randrange(15, 240)
                events.append(pv(t, str(_pick(rng, PAGES))))  # type: ignore[arg-type]
            roll = rng.random()
            if roll < 0.06:
                events.append(
                    (t + 20, "Signup", events[-1][2], {"plan": rng.choice(["free", "pro", "team"])})
                )
            elif roll < 0.10:
                url = rng.choice(["https://github.com/avocet/avocet", "https://docs.example.org/"])
                events.append((t + 10, "Outbound Link: Click", events[-1][2], {"url": url}))
            elif roll < 0.13:
                events.append(
                    (
                        t + 10,
                        "File Download",
                        events[-1][2],
                        {"url": "https://example.com/avocet.pdf"},
                    )
                )
            query = rng.choice(CAMPAIGNS) if rng.random() < 0.06 else ""
            visit = Visit(at, ip, ua, ref, events, query, screen)  # type: ignore[arg-type]
            _maybe_purchase(shop, visit)
            out.append(visit)
    return out


# Purchases in two currencies (their own generator: the visits above stay as they were).
PRICES = [("EUR", "19.00", 6), ("EUR", "49.00", 2), ("USD", "24.00", 3), ("GBP", "16.00", 1)]


def _maybe_purchase(rng: random.Random, visit: Visit) -> None:
    if rng.random() >= 0.025:
        return
    currency, amount, _ = rng.choices(PRICES, weights=[p[2] for p in PRICES])[0]
    at = visit.events[-1][0] + 30
    visit.events.append((at, "Purchase", "/checkout", {}))
    visit.revenue[len(visit.events) - 1] = (amount, currency)
