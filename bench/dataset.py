"""Deterministic event generator that feeds the real ingest pipeline (no hand-written SQL).

`plan_events(...)` yields, for a seed, the same logical hits every time: visitors with one
to three sessions a day, sessions of pageviews and custom events with realistic gaps,
sources, devices, countries, revenue. `load(...)` pushes them through `Ingestor.build` and
appends them to DuckDB in big Arrow batches, as the group-commit writer would.

    .venv/bin/python bench/dataset.py DATA_DIR --events 1000000 --sites 20 --days 400 --seed 1
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.services import Services

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
]
REFERRERS = [
    None,
    None,
    None,
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/",
    "https://t.co/x",
    "https://www.reddit.com/r/x/",
    "https://github.com/a/b",
    "https://chatgpt.com/",
    "https://blog.example.net/p",
]
UTMS = [
    "",
    "",
    "",
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
    "?utm_source=twitter&utm_medium=social&utm_campaign=launch",
    "?ref=producthunt",
]
# Documentation addresses of several countries (iptocc knows these blocks).
IP_PREFIXES = [
    "81.2.69.",
    "8.8.8.",
    "1.1.1.",
    "5.45.96.",
    "31.13.64.",
    "41.0.0.",
    "85.214.132.",
    "103.21.244.",
    "177.67.80.",
    "210.140.92.",
]
SECTIONS = ["blog", "docs", "pricing", "about", "changelog", "guides", "careers"]


@dataclass(frozen=True)
class Planned:
    site_index: int
    ts_us: int
    hit: Hit
    client: Client


def _session(rng: random.Random, site: str, host: str, start_us: int) -> list[tuple[int, Hit]]:
    utm = rng.choice(UTMS)
    referrer = rng.choice(REFERRERS)
    width = rng.choice([390, 768, 1280, 1536, 1920])
    ts = start_us
    hits = []
    for n in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6])):
        path = f"/{rng.choice(SECTIONS)}/{int(rng.paretovariate(1.2)) % 500}"
        url = f"https://{host}{path}{utm if n == 0 else ''}"
        hits.append(
            (
                ts,
                Hit(
                    name="pageview",
                    url=url,
                    site_id=site,
                    referrer=referrer if n == 0 else None,
                    screen_width=width,
                ),
            )
        )
        if rng.random() < 0.08:
            plan = rng.choice(["free", "pro"])
            paid = rng.random() < 0.5
            revenue = (Decimal(rng.choice([9, 19, 49])), "EUR") if paid else None
            signup = Hit(
                name="Signup", url=url, site_id=site, props=(("plan", plan),), revenue=revenue
            )
            hits.append((ts + 5_000_000, signup))
        ts += rng.randint(10, 600) * 1_000_000
    return hits


def plan_events(
    sites: list[str], hosts: list[str], events: int, days: int, seed: int, end: datetime
) -> Iterator[list[Planned]]:
    """Yields one day's hits at a time (oldest day first), about `events` in total."""
    rng = random.Random(seed)
    # Zipf-like sizes: with 20 sites the first holds ~23% of all events (2.3M of 10M).
    weights = [1 / (i + 1) ** 0.85 for i in range(len(sites))]
    per_day = events / days
    start_day = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(days):
        day_start = int((start_day + timedelta(days=d)).timestamp() * 1_000_000)
        planned: list[Planned] = []
        while len(planned) < per_day:
            s = rng.choices(range(len(sites)), weights)[0]
            client = Client(
                f"{rng.choice(IP_PREFIXES)}{rng.randint(1, 254)}",
                rng.choice(AGENTS).format(v=rng.randint(110, 131)),
            )
            at = day_start + rng.randint(0, 20 * 3600) * 1_000_000
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                for ts, hit in _session(rng, sites[s], hosts[s], at):
                    planned.append(Planned(s, ts, hit, client))
                at += rng.randint(31, 120) * 60 * 1_000_000
        yield planned


def load(
    svc: Services,
    events: int,
    sites: int,
    days: int,
    seed: int,
    end: datetime | None = None,
    after_day: Callable[[datetime], None] | None = None,
) -> int:
    """Create `sites` sites and push about `events` planned hits through the pipeline.
    after_day(t): called once each day's hits are stored, t just after that UTC day (what
    a server's jobs would see as "now" then)."""
    end = end or datetime.now(UTC)
    created = [svc.meta.add_site(f"site{i}.example") for i in range(sites)]
    ids = [s.id for s in created]
    by_id = {s.id: s for s in created}
    stored = 0
    batch: list[tuple[object, ...]] = []
    for day in plan_events(ids, [s.domain for s in created], events, days, seed, end):
        rows = []
        for p in day:
            row = svc.ingest.build(p.hit, by_id[ids[p.site_index]], p.client, p.ts_us)
            if not isinstance(row, Drop):
                rows.append(row)
        rows.sort(key=lambda r: r[1])  # stored in time order, as live ingestion stores them
        batch.extend(rows)
        if len(batch) >= 50_000 or (after_day and batch):
            svc.events.append(batch)
            stored += len(batch)
            batch = []
        svc.ingest.sessions.sweep(int(end.timestamp() * 1e6))
        if after_day and day:
            last = max(p.ts_us for p in day)
            after_day(datetime.fromtimestamp(last // 1_000_000 // 86_400 * 86_400 + 86_400, UTC))
    if batch:
        svc.events.append(batch)
        stored += len(batch)
    return stored


def load_today(svc: Services, seed: int, now: datetime | None = None) -> int:
    """Top up a generated data dir, once a day, with today's hits up to `now` (the usual
    volume of a day, UTC): a period ending today then holds a partial today, as on a live
    server, whose answers read today's raw events. Returns the events stored."""
    now = now or datetime.now(UTC)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    store = svc.events
    since = midnight.replace(tzinfo=None)
    if store.query("SELECT count(*) FROM events WHERE ts >= ?", [since])[0][0]:
        return 0
    total, days = store.query("SELECT count(*), count(DISTINCT day) FROM events")[0]
    # In creation order (site0, site1, ...): the same sizes as the generated days.
    sites = sorted(svc.meta.sites(), key=lambda s: int(s.domain.removeprefix("site").split(".")[0]))
    ids = [s.id for s in sites]
    limit = int(now.timestamp() * 1_000_000)
    rows = []
    for day in plan_events(
        ids,
        [s.domain for s in sites],
        total // max(days, 1),
        1,
        seed + midnight.toordinal(),
        midnight + timedelta(days=1),
    ):
        for p in day:
            if p.ts_us <= limit:
                row = svc.ingest.build(p.hit, sites[p.site_index], p.client, p.ts_us)
                if not isinstance(row, Drop):
                    rows.append(row)
    rows.sort(key=lambda r: r[1])
    if rows:
        svc.events.append(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="generate events through the ingest pipeline")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--today",
        action="store_true",
        help="only top up an existing data dir with today's events so far (once a day)",
    )
    args = parser.parse_args()
    svc = Services(Settings(data_dir=str(args.data_dir)))
    if args.today:
        print(f"{load_today(svc, args.seed)} events added for today")
        svc.events.checkpoint()
        svc.events.close()
        return
    t0 = time.perf_counter()
    n = load(svc, args.events, args.sites, args.days, args.seed)
    svc.events.checkpoint()
    print(f"{n} events in {time.perf_counter() - t0:.1f}s")
    svc.events.close()


if __name__ == "__main__":
    main()
