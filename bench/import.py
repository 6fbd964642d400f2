"""Import throughput: a generated GoatCounter v2 export of N rows (default 1,000,000) into
a fresh data dir; prints rows/s and the peak RSS of the process that imports (a child
process of its own, so generating the CSV doesn't count), with the machine's cores and
load. Not part of `make test` (pytest collects tests/ only); 1M rows take 1-2 minutes.

    .venv/bin/python bench/import.py --rows 100000
    .venv/bin/python bench/import.py --raw-days 90   # every day older than the raw window
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


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(export: Path, data: Path, raw_days: int) -> None:
    """Import the export into a new site of a fresh data dir; print the figures as JSON."""
    settings = Settings(data_dir=str(data), run_jobs=False)
    meta, store = open_stores(settings)
    site = meta.add_site("example.com")
    job = import_jobs.create_job(
        meta, site.id, "goatcounter", content_hash([export]), [export.name], None
    )
    before = peak_rss_mb()
    began = time.perf_counter()
    done = run_import(
        meta, store, site, job, goatcounter.source(site.domain), [export], raw_days=raw_days
    )
    took = time.perf_counter() - began
    store.close()
    meta.close()
    assert done.summary is not None, done.error
    print(
        json.dumps(
            {
                "seconds": took,
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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--raw-days", type=int, default=100_000, help="90: all days as rollups")
    parser.add_argument("--child", nargs=2, metavar=("EXPORT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.raw_days)
        return
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export.csv"
        generate(export, args.rows)
        load = os.getloadavg()
        command = [sys.executable, __file__, "--raw-days", str(args.raw_days), "--child"]
        run = subprocess.run(
            [*command, str(export), str(Path(tmp) / "data")],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode:
            sys.exit(run.stderr)
        got = json.loads(run.stdout.strip().splitlines()[-1])
    print(
        f"{args.rows:,} rows in {got['seconds']:.1f} s: {args.rows / got['seconds']:,.0f} rows/s,"
        f" {got['events']:,} events, {got['sessions']:,} sessions,"
        f" {got['days_as_rollups']} days as rollups only; peak RSS of the import process"
        f" {got['peak_rss_mb']:.0f} MB ({got['rss_before_mb']:.0f} MB before it began);"
        f" {os.cpu_count()} cores, load average {load[0]:.2f} before"
    )


if __name__ == "__main__":
    main()
