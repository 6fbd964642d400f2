"""Import throughput: a generated export of N rows (default 1,000,000) into a fresh data
dir; prints rows/s and the peak RSS of the process that imports (a child process of its
own, so generating the export doesn't count), with the machine's cores and load. Not part
of `make test` (pytest collects tests/ only).

Sources: ga4 (the BigQuery export's daily events_YYYYMMDD tables as Parquet, GA4's own
event mix: session_start, first_visit, page_view, user_engagement, scroll, clicks and
purchases), umami (website_event.csv + session.csv as `\\copy ... CSV HEADER` writes
them) and goatcounter (its v2 CSV).

    .venv/bin/python bench/import.py --source ga4
    .venv/bin/python bench/import.py --source umami --rows 100000
    .venv/bin/python bench/import.py --raw-days 90   # every day older than the raw window
    .venv/bin/python bench/import.py --storage clickhouse   # into chdb (the extra)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa
import pyarrow.parquet as pq

from app.config import Settings
from app.imports import ga4, goatcounter, umami
from app.imports.run import content_hash, import_copy_limit, import_store_settings, run_import
from app.services import open_stores
from app.storage import import_jobs
from app.storage.events import EventStore

PAGES = [f"/blog/post-{i}" for i in range(300)] + ["/", "/about", "/pricing"]
REFS = [
    ("", ""),
    ("https://news.ycombinator.com/", "h"),
    ("https://www.google.com/", "h"),
    ("newsletter", "c"),
    ("", ""),
]
PLACES = ["US-CA", "DE", "FR", "NL", "GB", "US-TX", "JP", ""]
BROWSERS = [
    ("Firefox 121", "Windows 10", "1920,1080,1"),
    ("Chrome 120", "iOS 17.2", "390,844,3"),
    ("Safari 17.1", "macOS 14.1", "1440,900,2"),
]


def generate(path: Path, rows: int, days: int = 60, seed: int = 1) -> None:
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(goatcounter.HEADER)
        for i in range(rows):
            ts = start + timedelta(seconds=i * days * 86400 // rows)
            ref, scheme = rnd.choice(REFS)
            browser, system, screen = rnd.choice(BROWSERS)
            session = f"s{rnd.randrange(rows // 4 + 1)}"
            out.writerow(
                [
                    rnd.choice(PAGES),
                    "",
                    "false",
                    "",
                    browser,
                    system,
                    session,
                    "0",
                    ref,
                    scheme,
                    screen,
                    rnd.choice(PLACES),
                    "",
                    ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ]
            )


# GA4's export types for the columns written (BigQuery: INT64, FLOAT64, STRING, RECORD).
GA4_VALUE = pa.struct(
    [("string_value", pa.string()), ("int_value", pa.int64()),
     ("float_value", pa.float64()), ("double_value", pa.float64())]
)  # fmt: skip
GA4_SCHEMA = pa.schema(
    [
        ("event_date", pa.string()),
        ("event_timestamp", pa.int64()),
        ("event_name", pa.string()),
        ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", GA4_VALUE)]))),
        ("user_pseudo_id", pa.string()),
        ("device", pa.struct([
            ("category", pa.string()), ("operating_system", pa.string()),
            ("operating_system_version", pa.string()),
            ("web_info", pa.struct([("browser", pa.string()), ("browser_version", pa.string())])),
        ])),
        ("geo", pa.struct([("country", pa.string()), ("city", pa.string())])),
        ("collected_traffic_source",
         pa.struct([("manual_source", pa.string()), ("manual_medium", pa.string())])),
        ("ecommerce", pa.struct([("purchase_revenue", pa.float64())])),
    ]
)  # fmt: skip
GA4_DEVICES = [
    {"category": "desktop", "operating_system": "Windows", "operating_system_version": "Windows 10",
     "web_info": {"browser": "Chrome", "browser_version": "120.0.6099.129"}},
    {"category": "mobile", "operating_system": "iOS", "operating_system_version": "iOS 17.1",
     "web_info": {"browser": "Safari", "browser_version": "17.1"}},
    {"category": "desktop", "operating_system": "Macintosh", "operating_system_version": "14.1",
     "web_info": {"browser": "Firefox", "browser_version": "121.0"}},
    {"category": "tablet", "operating_system": "Android", "operating_system_version": "13",
     "web_info": {"browser": "Samsung Internet", "browser_version": "23.0"}},
]  # fmt: skip
GA4_GEO = [
    {"country": "United States", "city": "New York"}, {"country": "Germany", "city": "Berlin"},
    {"country": "France", "city": "(not set)"}, {"country": "Japan", "city": "Tokyo"},
    {"country": "Netherlands", "city": "Amsterdam"},
]  # fmt: skip
GA4_REFS = [None, None, "https://www.google.com/", "https://news.ycombinator.com/"]


def _param(key: str, value: str | int) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"int_value": value}}
    return {"key": key, "value": {"string_value": value}}


def _event(
    visit: tuple[list[dict[str, object]], dict[str, object], int, str | None],
    name: str,
    at: int,
    page: str,
    *extra: dict[str, object],
) -> None:
    out, base, session, ref = visit
    params = [_param("ga_session_id", session), _param("ga_session_number", 1),
              _param("page_location", f"https://example.com{page}"), _param("page_title", page)]  # fmt: skip
    if ref and name in ("session_start", "page_view"):
        params.append(_param("page_referrer", ref))
    out.append({**base, "event_timestamp": at, "event_name": name, "event_params": params + list(extra)})  # fmt: skip


def generate_ga4(folder: Path, rows: int, days: int = 60, seed: int = 1) -> list[Path]:
    """events_YYYYMMDD.parquet files of ~rows events: per visit session_start (first_visit
    for a new user), 1-6 page_views each with a scroll or a click half the time, a
    purchase now and then, user_engagement at the end."""
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    per_day = rows // days
    users = max(rows // 12, 1)
    seen: set[int] = set()
    paths: list[Path] = []
    written = 0
    for d in range(days):
        day = start + timedelta(days=d)
        want = per_day if d < days - 1 else rows - written
        out: list[dict[str, object]] = []
        while len(out) < want:
            user = rnd.randrange(users)
            uid = f"{1_000_000_000 + user}.{1_735_689_600 + user}"
            ts = int((day + timedelta(seconds=rnd.randrange(86_000))).timestamp() * 1e6)
            session = ts // 1_000_000
            base = {
                "event_date": day.strftime("%Y%m%d"),
                "user_pseudo_id": uid,
                "device": GA4_DEVICES[user % len(GA4_DEVICES)],
                "geo": GA4_GEO[user % len(GA4_GEO)],
                "collected_traffic_source": (
                    {"manual_source": "newsletter", "manual_medium": "email"}
                    if rnd.random() < 0.1 else None
                ),
            }  # fmt: skip

            visit = (out, base, session, rnd.choice(GA4_REFS))
            page = rnd.choice(PAGES)
            _event(visit, "session_start", ts, page)
            if user not in seen:
                seen.add(user)
                _event(visit, "first_visit", ts, page)
            for _ in range(rnd.choice((1, 1, 1, 2, 3, 6))):
                _event(visit, "page_view", ts, page, _param("engagement_time_msec", 100))
                if rnd.random() < 0.5:
                    ts += rnd.randrange(1, 90) * 1_000_000
                    if rnd.random() < 0.5:
                        _event(visit, "scroll", ts, page, _param("percent_scrolled", 90))
                    else:
                        _event(visit, "click", ts, page, _param("link_url", "https://github.com/"))
                if rnd.random() < 0.01:
                    out.append({**base, "event_timestamp": ts, "event_name": "purchase",
                                "event_params": [_param("ga_session_id", session),
                                                 _param("page_location", "https://example.com/buy"),
                                                 _param("currency", "EUR"),
                                                 _param("transaction_id", f"T{ts}")],
                                "ecommerce": {"purchase_revenue": 19.5}})  # fmt: skip
                ts += rnd.randrange(5, 300) * 1_000_000
                page = rnd.choice(PAGES)
            _event(visit, "user_engagement", ts, page, _param("engagement_time_msec", 5000))
        out = out[:want]
        written += len(out)
        path = folder / f"events_{day:%Y%m%d}.parquet"
        pq.write_table(pa.Table.from_pylist(out, schema=GA4_SCHEMA), path)
        paths.append(path)
    return paths


UMAMI_BROWSERS = [
    ("chrome", "Windows 10", "desktop", "1920x1080"),
    ("ios", "iOS", "mobile", "390x844"),
    ("firefox", "Mac OS", "laptop", "1440x900"),
    ("crios", "Android OS", "mobile", "412x915"),
]
UMAMI_PLACES = [("US", "US-CA", "San Francisco"), ("DE", "DE-BE", "Berlin"), ("FR", "", ""),
                ("JP", "JP-13", "Tokyo"), ("GB", "", "")]  # fmt: skip
UMAMI_REFS = [("", ""), ("", ""), ("www.google.com", "/"), ("news.ycombinator.com", "/item")]


def generate_umami(folder: Path, rows: int, days: int = 60, seed: int = 1) -> list[Path]:
    """website_event.csv (rows events: page views, a custom event one in ten, visits of
    1-6 of them with Umami's visit_id) and session.csv, columns as Umami v2.13 has them."""
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    website = "6a3e0f64-1c2b-4d8e-9f10-2b3c4d5e6f70"
    sessions = max(rows // 12, 1)
    events_path, sessions_path = folder / "website_event.csv", folder / "session.csv"
    with sessions_path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["session_id", "website_id", "browser", "os", "device", "screen",
                      "language", "country", "subdivision1", "city", "created_at"])  # fmt: skip
        for s in range(sessions):
            browser, os_name, device, screen = UMAMI_BROWSERS[s % len(UMAMI_BROWSERS)]
            country, region, city = UMAMI_PLACES[s % len(UMAMI_PLACES)]
            out.writerow([f"5e55f000-0000-4000-8000-{s:012d}", website, browser, os_name, device,
                          screen, "en-US", country, region, city, "2025-01-01 00:00:00+00"])  # fmt: skip
    with events_path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["event_id", "website_id", "session_id", "visit_id", "created_at", "url_path",
                      "url_query", "referrer_path", "referrer_query", "referrer_domain",
                      "page_title", "event_type", "event_name", "hostname"])  # fmt: skip
        n = 0
        while n < rows:
            s = rnd.randrange(sessions)
            ts = start + timedelta(seconds=rnd.randrange(days * 86_400 - 3600))
            visit = f"7151f000-0000-4000-8000-{n:012d}"
            domain, path = rnd.choice(UMAMI_REFS)
            query = "utm_source=newsletter" if rnd.random() < 0.1 else ""
            for _ in range(min(rnd.choice((1, 1, 1, 2, 3, 6)), rows - n)):
                page = rnd.choice(PAGES)
                custom = rnd.random() < 0.1
                out.writerow([f"e7e7f000-0000-4000-8000-{n:012d}", website,
                              f"5e55f000-0000-4000-8000-{s:012d}", visit,
                              ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00", page, query, path,
                              "", domain, page, "2" if custom else "1",
                              "signup" if custom else "", "example.com"])  # fmt: skip
                domain, path, query = "", "", ""
                ts += timedelta(seconds=rnd.randrange(5, 300))
                n += 1
    return [events_path, sessions_path]


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The child's start when pandas is to be absent, as in an install without the clickhouse
# extra: `import pandas` raises ModuleNotFoundError, as pyarrow expects when it is missing.
NO_PANDAS = """
import runpy, sys
class NoPandas:
    def find_spec(self, name, path, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoPandas())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
SOURCES = {"ga4": ga4.source, "umami": umami.source, "goatcounter": goatcounter.source}


def child(name: str, exports: list[Path], data: Path, raw_days: int, storage: str) -> None:
    """Import the export into a new site of a fresh data dir; print the figures as JSON."""
    if "pandas" in sys.modules and storage == "duckdb":
        print("pandas was imported before the import began", file=sys.stderr)
    settings = Settings(data_dir=str(data), run_jobs=False, storage=storage)
    meta, store = open_stores(settings)
    if storage == "duckdb":
        store.close()  # reopened as `avocet import` opens it when no server runs (and runs it)
        store = EventStore(data / "events.duckdb", import_store_settings(settings.duckdb))
    site = meta.add_site("example.com")
    job = import_jobs.create_job(
        meta, site.id, name, content_hash(exports), [p.name for p in exports], None
    )
    before = peak_rss_mb()
    began = time.perf_counter()
    done = run_import(
        meta,
        store,
        site,
        job,
        SOURCES[name](site.domain),
        exports,
        raw_days=raw_days,
        copy_memory_limit=import_copy_limit(settings.duckdb),
    )
    took = time.perf_counter() - began
    store.close()
    meta.close()
    assert done.summary is not None, done.error
    print(
        json.dumps(
            {
                "seconds": took,
                "read": done.summary["rows_read"],
                "events": done.summary["events_imported"],
                "sessions": done.summary["sessions"],
                "days_as_rollups": done.summary["days_as_rollups"],
                "rss_before_mb": before,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=sorted(SOURCES), default="ga4")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--raw-days", type=int, default=100_000, help="90: all days as rollups")
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="let pyarrow load pandas (installed by the clickhouse extra's chdb, which"
        " `make dev` adds): by default the child runs as `make run` and the Docker image"
        " install, without it",
    )
    parser.add_argument(
        "--storage", choices=("duckdb", "clickhouse"), default="duckdb",
        help="the events store (clickhouse: chdb in the data dir; it loads pandas)",
    )  # fmt: skip
    parser.add_argument("--child", nargs="+", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        *exports, data = args.child
        child(args.source, [Path(p) for p in exports], Path(data), args.raw_days, args.storage)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        if args.source == "ga4":
            exports = generate_ga4(folder, args.rows)
        elif args.source == "umami":
            exports = generate_umami(folder, args.rows)
        else:
            exports = [folder / "export.csv"]
            generate(exports[0], args.rows)
        size = sum(p.stat().st_size for p in exports) / 1e6
        load = os.getloadavg()
        command = [sys.executable, __file__, "--source", args.source, "--raw-days",
                   str(args.raw_days), "--storage", args.storage, "--child"]  # fmt: skip
        if (
            not args.with_pandas and args.storage == "duckdb"
        ):  # as if not installed: pyarrow then does without it
            command[1:2] = ["-c", NO_PANDAS, __file__]
        run = subprocess.run(
            [*command, *map(str, exports), str(Path(tmp) / "data")],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode:
            sys.exit(run.stderr)
        got = json.loads(run.stdout.strip().splitlines()[-1])
    print(
        f"{args.source} into {args.storage}: {got['read']:,} rows ({size:.0f} MB in {len(exports)} files) in"
        f" {got['seconds']:.1f} s: {got['read'] / got['seconds']:,.0f} rows/s,"
        f" {got['events']:,} events, {got['sessions']:,} sessions,"
        f" {got['days_as_rollups']} days as rollups only; peak RSS of the import process"
        f"{' (pandas loaded)' if args.with_pandas or args.storage == 'clickhouse' else ''}"
        f" {got['peak_rss_mb']:.0f} MB ({got['rss_before_mb']:.0f} MB before it began);"
        f" {os.cpu_count()} cores, load average {load[0]:.2f} before"
    )


if __name__ == "__main__":
    main()
