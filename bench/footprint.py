"""Disk footprint of events.duckdb on a long-running server (#23).

Events go through the real pipeline (bench/dataset.py: Ingestor.build, the writer's Arrow
batches), day by day, with the server's lifecycle jobs run after each day as its scheduler
would run them (rollup, prune past the raw retention, compaction, which rewrites the file
when its freed blocks pass 10 % of the used ones): first `--events` over `--days` days, then
`--live-events` over `--live-days` more days ("live-like appends, jobs running"). At the
end: file size and used blocks, per event ingested.

    .venv/bin/python bench/footprint.py [--events 3000000] [--days 90]
                                        [--live-events 1000000] [--live-days 30] [--sites 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings
from app.jobs.lifecycle import compact, prune_sites, rollup_sites
from app.services import Services
from bench.dataset import load


def measure(svc: Services) -> dict[str, float]:
    svc.events.checkpoint()
    size, used = svc.events.usage()
    return {"file_bytes": size, "used_bytes": used, "ratio": size / used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--live-events", type=int, default=1_000_000)
    parser.add_argument("--live-days", type=int, default=30)
    parser.add_argument("--raw-days", type=int, default=90, help="raw retention")
    parser.add_argument(
        "--sites",
        type=int,
        default=5,
        help="sites the events are spread over (the rollup job's ~24 statements per site-day"
        " set the run's length)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="avocet-footprint-"))
    try:
        svc = Services(Settings(data_dir=str(tmp), raw_retention_days=args.raw_days))
        raw_days = args.raw_days
        rewrites: list[int] = []

        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        history_end = today - timedelta(days=args.live_days)
        history: dict[str, float] = {}
        t0 = time.perf_counter()

        def jobs(now: datetime) -> None:
            sites = svc.meta.sites()
            rollup_sites(svc.events, sites, now=now)
            prune_sites(svc.events, sites, raw_days, now=now)
            report = compact(svc.events, now)
            if report.rewritten is not None:
                rewrites.append(report.rewritten)
            if now >= history_end and not history:
                stored = svc.events.query("SELECT count(*) FROM events")[0][0]
                history.update(
                    {"raw_rows": stored, "seconds": time.perf_counter() - t0, **measure(svc)}
                )

        # One stream, day by day: --events over --days, then --live-events over --live-days.
        total = args.events + args.live_events
        span = args.days + args.live_days
        stored = load(svc, total, sites=args.sites, days=span, seed=3, end=today, after_day=jobs)
        end = {"events": stored, "seconds": time.perf_counter() - t0, **measure(svc)}
        raw = svc.events.query("SELECT count(*) FROM events")[0][0]
        svc.events.close()
        report = {
            "cores": os.cpu_count(),
            "args": vars(args),
            "after_history": history,
            "at_end": end,
            "raw_rows_at_end": raw,
            "bytes_per_event": end["file_bytes"] / stored,
            "used_bytes_per_event": end["used_bytes"] / stored,
            "file_over_used": end["ratio"],
            "rewrites": rewrites,
        }
        print(json.dumps(report, indent=2))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"footprint-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
            json.dumps(report, indent=2)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
