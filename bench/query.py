"""Query benchmark: each stats question through the API vs the best hand-written DuckDB SQL
for the same answer, in one run, on the dataset of bench/dataset.py (10M events, 20 sites,
400 days by default).

    .venv/bin/python bench/query.py [--data DIR] [--events 10000000] [--rounds 3]

The data dir is generated when missing (minutes), and topped up with today's events up to
now (`dataset.py --today`, once a day): a period ends today, so its answers read a partial
today from raw events, as on a live server. `avocet serve` runs on the data dir; the direct
SQL runs in this process, read-only, on a byte-for-byte copy of the events file (DuckDB
locks a file to one process). Each question is asked in pairs, the API over HTTP and then
its SQL twin, so both see the same moments of a noisy machine: one warm pair, then 5 timed
pairs; the median of each side. --rounds repeats the whole set; each figure is the median
of the rounds' medians.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5

SESSIONS = """
    SELECT session_id, any_value(visitor_id) AS v,
           count(*) FILTER (WHERE name = 'pageview') AS pv,
           count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement') AND interactive) AS ic,
           epoch(max(ts)) - epoch(min(ts)) AS d
    FROM events WHERE site_id = $site AND ts >= $start AND ts < $end GROUP BY session_id"""

# name -> (API path, API params, hand-written SQL)
CASES: dict[str, tuple[str, dict[str, str], str]] = {
    "aggregate": (
        "aggregate",
        {"metrics": "visitors,visits,pageviews,bounce_rate,visit_duration"},
        f"WITH s AS ({SESSIONS}) SELECT count(DISTINCT v), count(*), sum(pv),"
        " avg((pv <= 1 AND ic = 0)::INT) * 100, avg(d) FROM s",
    ),
    "aggregate+filter": (
        "aggregate",
        {"metrics": "visitors,pageviews", "page": "/blog/*"},
        "SELECT count(DISTINCT visitor_id), count(*) FILTER (WHERE name = 'pageview') FROM events"
        " WHERE site_id = $site AND ts >= $start AND ts < $end AND name <> 'engagement'"
        " AND pathname LIKE '/blog/%'",
    ),
    "timeseries": (
        "timeseries",
        {"metrics": "visitors,pageviews", "interval": "day"},
        "SELECT day, count(DISTINCT visitor_id), count(*) FILTER (WHERE name = 'pageview')"
        " FROM events WHERE site_id = $site AND ts >= $start AND ts < $end AND name <> 'engagement'"
        " GROUP BY day ORDER BY day",
    ),
    "breakdown page": (
        "breakdown",
        {"property": "page", "metrics": "visitors,pageviews", "limit": "10"},
        "SELECT pathname, count(DISTINCT visitor_id) AS v, count(*) FILTER (WHERE name = 'pageview')"
        " FROM events WHERE site_id = $site AND ts >= $start AND ts < $end AND name <> 'engagement'"
        " GROUP BY pathname ORDER BY v DESC LIMIT 10",
    ),
    "breakdown source": (
        "breakdown",
        {"property": "source", "metrics": "visitors,visits,bounce_rate", "limit": "10"},
        "SELECT source, count(DISTINCT visitor_id) AS v, count(*) AS visits,"
        " avg((pv <= 1 AND ic = 0)::INT) * 100 FROM (SELECT session_id, any_value(visitor_id) AS"
        " visitor_id, any_value(source) AS source, count(*) FILTER (WHERE name = 'pageview') AS pv,"
        " count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement') AND interactive) AS ic"
        " FROM events WHERE site_id = $site AND ts >= $start AND ts < $end GROUP BY session_id)"
        " GROUP BY source ORDER BY v DESC LIMIT 10",
    ),
}
PERIODS = {"30d": 30, "12m": 365}
# Filtered questions beyond the 90-day raw window are refused with 422 by design.
RAW_ONLY = {"aggregate+filter"}


class Client:
    """One keep-alive HTTP/1.1 connection (stdlib): the client's own cost per request is
    ~0.1 ms, where httpx's is 0.6-2 ms, which would be billed to the API."""

    def __init__(self, host: str, port: int) -> None:
        self._conn = http.client.HTTPConnection(host, port, timeout=60)

    def get(self, path: str, query: dict[str, str]) -> bytes:
        self._conn.request("GET", f"{path}?{urllib.parse.urlencode(query)}")
        response = self._conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        return body

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()


def timed_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def sites_by_size(data: Path) -> list[tuple[str, int]]:
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT site_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    finally:
        con.close()
    return [(r[0], int(r[1])) for r in rows]


def utc_bounds(days: int) -> tuple[datetime, datetime]:
    # The sites are in UTC: a period is whole UTC days ending today.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return today - timedelta(days=days - 1), today + timedelta(days=1)


def sql_copy(data: Path) -> Path:
    """A byte-for-byte copy of the events file for the direct SQL: DuckDB locks a file to
    one process, and with a copy each API call and its SQL twin run side by side, in the
    same seconds of a noisy machine, instead of in phases minutes apart."""
    path = data / "events.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CHECKPOINT")  # everything in the main file, no WAL to carry over
    con.close()
    copy = data.parent / f"{data.name}-sql-copy.duckdb"
    shutil.copyfile(path, copy)
    return copy


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    # No jobs: a rollup catch-up must not start building (and writing) mid-benchmark.
    env = {
        **os.environ,
        "AVOCET_OPEN_STATS_ON_LOOPBACK": "true",
        "AVOCET_LOG_LEVEL": "warning",
        "AVOCET_RUN_JOBS": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the server did not start")


def ensure_data(data: Path, events: int) -> None:
    """The benchmark's data dir: generated when missing (minutes), then topped up with
    today's events so far, as a live server has them (the generated days end yesterday)."""
    dataset = str(ROOT / "bench" / "dataset.py")
    if not (data / "events.duckdb").exists():
        subprocess.run(
            [sys.executable, dataset, str(data), "--events", str(events), "--sites", "20",
             "--days", "400"],
            check=True,
        )  # fmt: skip
    subprocess.run([sys.executable, dataset, str(data), "--today"], check=True)


def one_round(
    http: Client, con: duckdb.DuckDBPyConnection, sites: list[str]
) -> dict[str, tuple[float, float | None]]:
    """Each question: one warm call of each, then RUNS pairs (API call, then the same
    question in direct SQL); the medians of the API times and of the SQL times."""
    out: dict[str, tuple[float, float | None]] = {}
    for site in sites:
        for period, days in PERIODS.items():
            start, end = utc_bounds(days)
            for name, (path, params, sql) in CASES.items():
                if period == "12m" and name in RAW_ONLY:
                    continue
                query = {"site_id": site, "period": period, **params}
                bound = {"site": site, "start": start, "end": end}

                def call(path: str = path, query: dict[str, str] = query) -> None:
                    http.get(f"/api/v1/stats/{path}", query)

                def direct(sql: str = sql, bound: dict[str, object] = bound) -> None:
                    con.execute(sql, bound).fetchall()

                call()
                direct()
                pairs = [(timed_ms(call), timed_ms(direct)) for _ in range(RUNS)]
                out[f"{site}|{period}|{name}"] = (
                    statistics.median(a for a, _ in pairs),
                    statistics.median(s for _, s in pairs),
                )

        def now(site: str = site) -> None:
            http.get("/api/v1/stats/realtime", {"site_id": site})

        now()
        out[f"{site}|realtime"] = (statistics.median(timed_ms(now) for _ in range(RUNS)), None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data-10m")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="ask the whole set of questions this many times (the machine drifts)",
    )
    args = parser.parse_args()
    ensure_data(args.data, args.events)
    ranked = sites_by_size(args.data)
    picked = [ranked[0], ranked[-1]]
    sites = [s for s, _ in picked]
    copy = sql_copy(args.data)
    port = 18090
    proc = start_server(args.data, port)
    con = duckdb.connect(str(copy), read_only=True)
    rounds = []
    try:
        with Client("127.0.0.1", port) as http:
            for _ in range(args.rounds):
                rounds.append(one_round(http, con, sites))
    finally:
        con.close()
        proc.terminate()
        proc.wait()
        copy.unlink()
    rows = []
    for key in rounds[0]:
        api_ms = statistics.median(r[key][0] for r in rounds)
        sqls = [v for r in rounds if (v := r[key][1]) is not None]
        sql_ms = statistics.median(sqls) if sqls else None
        rows.append(
            {
                "case": key,
                "api_ms": round(api_ms, 1),
                "sql_ms": round(sql_ms, 1) if sql_ms else None,
                "ratio": round(api_ms / sql_ms, 2) if sql_ms else None,
                "api_rounds": [round(r[key][0], 1) for r in rounds],
                "sql_rounds": [round(v, 1) for v in sqls] or None,
            }
        )
    report = {
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "sites": {s: n for s, n in picked},
        "total_events": sum(n for _, n in ranked),
        "rows": rows,
    }
    for row in rows:
        print(
            f"{row['case']:<45} api {row['api_ms']:>8} ms   sql {row['sql_ms']!s:>8} ms   x{row['ratio']}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"query-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
