"""Import throughput: a generated GoatCounter v2 export of N rows (default 1,000,000) into
a fresh data dir; prints rows/s and the process's peak RSS.

    .venv/bin/python bench/import.py --rows 100000
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings
from app.imports import goatcounter
from app.imports.run import content_hash, run_import
from app.services import open_stores
from app.storage import import_jobs

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--raw-days", type=int, default=100_000, help="90: all days as rollups")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export.csv"
        generate(export, args.rows)
        settings = Settings(data_dir=str(Path(tmp) / "data"), run_jobs=False)
        meta, store = open_stores(settings)
        site = meta.add_site("example.com")
        job = import_jobs.create_job(
            meta, site.id, "goatcounter", content_hash([export]), ["export.csv"], None
        )
        began = time.perf_counter()
        done = run_import(
            meta,
            store,
            site,
            job,
            goatcounter.source(site.domain),
            [export],
            raw_days=args.raw_days,
        )
        took = time.perf_counter() - began
        store.close()
        meta.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert done.summary is not None
    print(
        f"{args.rows} rows in {took:.1f} s: {args.rows / took:,.0f} rows/s,"
        f" {done.summary['events_imported']} events, {done.summary['sessions']} sessions,"
        f" peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
