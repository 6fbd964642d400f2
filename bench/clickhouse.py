"""ClickHouse vs DuckDB (issue #24): the query benchmark's questions (bench/query.py) on the
same events, answered by the app's own answer path (answer_sync: compile for the store's
dialect, run, shape) from the DuckDB events file and from ClickHouse's embedded engine
(chdb) holding a copy of its rows, in one process and one run, each pair of calls side by
side (the same seconds of a noisy machine). Every pair of answers must be equal.

    .venv/bin/python bench/clickhouse.py [--data DIR] [--events 10000000] [--rounds 3]

The copy into chdb (DATA/clickhouse-bench) is made once (its rows/s are reported) and kept
while it holds as many events as the DuckDB file. Needs the clickhouse extra (make dev).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import DuckDBSettings
from app.query.answer import answer_sync
from app.query.model import Query
from app.query.parse import aggregate_query, breakdown_query, timeseries_query
from app.query.periods import day_range
from app.query.run import Result
from app.storage.clickhouse.store import ClickHouseEventStore
from app.storage.events import EventStore
from app.storage.store import Store
from bench.query import CASES, PERIODS, RAW_ONLY, RUNS, ensure_data, timed_ms, utc_bounds

BUILDERS = {
    "aggregate": aggregate_query,
    "timeseries": timeseries_query,
    "breakdown": breakdown_query,
}
COPY_BATCH = 500_000


def copy_into(duck: EventStore, ch: ClickHouseEventStore) -> dict[str, float]:
    """Every raw event of the DuckDB store into ClickHouse, in Arrow batches (once)."""
    total = duck.query("SELECT count(*) FROM events")[0][0]
    have = ch.query("SELECT count() FROM events")[0][0]
    if have == total:
        return {"events": total, "copied": 0}
    if have:
        raise SystemExit(f"{have} of {total} events in the ClickHouse copy: delete it and rerun")
    t0 = time.perf_counter()
    with duck.reading() as cur:
        reader = cur.sql("SELECT * FROM events").to_arrow_reader(COPY_BATCH)
        for i, batch in enumerate(reader):
            ch.append_table(_table(batch), f"bench-copy:{i}")
    took = time.perf_counter() - t0
    return {
        "events": total,
        "copied": total,
        "copy_s": round(took, 1),
        "rows_per_s": round(total / took),
    }


def _table(batch: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def questions(site: str) -> dict[str, Query]:
    """bench/query.py's questions of one site, as the native API parses them."""
    out = {}
    zone = ZoneInfo("UTC")  # the generated sites are in UTC
    for period, days in PERIODS.items():
        start, end = utc_bounds(days)
        span = day_range(period, zone, start.date(), (end - timedelta(days=1)).date())
        for name, (path, params, _) in CASES.items():
            if period == "12m" and name in RAW_ONLY:
                continue
            out[f"{site}|{period}|{name}"] = BUILDERS[path](site, span, params)
    return out


def same(a: Result, b: Result) -> bool:
    if a.total_rows != b.total_rows or len(a.rows) != len(b.rows):
        return False
    for x, y in zip(a.rows, b.rows, strict=True):
        for key in x:
            u, v = x[key], y.get(key)
            if isinstance(u, float) or isinstance(v, float):
                if abs(float(u or 0) - float(v or 0)) > 1e-6 * max(1.0, abs(float(u or 0))):
                    return False
            elif u != v:
                return False
    return True


def one_round(
    stores: tuple[Store, Store], asked: dict[str, Query]
) -> dict[str, tuple[float, float]]:
    """Each question: one warm call on each engine (answers compared), then RUNS pairs."""
    duck, ch = stores
    out = {}
    for key, q in asked.items():
        if not same(answer_sync(duck, q), answer_sync(ch, q)):
            raise SystemExit(f"{key}: the engines answered differently")
        pairs = [
            (timed_ms(lambda q=q: answer_sync(duck, q)), timed_ms(lambda q=q: answer_sync(ch, q)))
            for _ in range(RUNS)
        ]
        out[key] = (statistics.median(d for d, _ in pairs), statistics.median(c for _, c in pairs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data-10m")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_data(args.data, args.events)
    duck = EventStore(args.data / "events.duckdb", DuckDBSettings())
    ch = ClickHouseEventStore(f"chdb://{args.data / 'clickhouse-bench'}")
    try:
        copied = copy_into(duck, ch)
        ranked = duck.query("SELECT site_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC")
        picked = [ranked[0], ranked[-1]]
        asked = {k: q for site, _ in picked for k, q in questions(site).items()}
        rounds = [one_round((duck, ch), asked) for _ in range(args.rounds)]
    finally:
        ch.close()
        duck.close()
    rows = []
    for key in rounds[0]:
        duck_ms = statistics.median(r[key][0] for r in rounds)
        ch_ms = statistics.median(r[key][1] for r in rounds)
        rows.append({"case": key, "duckdb_ms": round(duck_ms, 1), "chdb_ms": round(ch_ms, 1),
                     "ratio": round(ch_ms / duck_ms, 2)})  # fmt: skip
        print(
            f"{key:<45} duckdb {duck_ms:>8.1f} ms   chdb {ch_ms:>8.1f} ms   x{ch_ms / duck_ms:.2f}"
        )
    report = {
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "sites": {s: n for s, n in picked},
        "copy": copied,
        "rows": rows,
    }
    print(json.dumps(report["copy"]))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"clickhouse-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(report, indent=2)
    )


if __name__ == "__main__":
    main()
