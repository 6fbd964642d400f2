"""Dashboard benchmark: Chromium loads a site's dashboard, from navigation to every panel
rendered, next to the same API calls made directly from this script, in one run.

    .venv/bin/python bench/dashboard.py [--data DIR] [--events 10000000] [--loads 5]
    .venv/bin/python bench/dashboard.py --small      # a 200k-event data dir, for a try-out

On the dataset of bench/query.py (generated when missing, topped up with today's events,
rollups built with `avocet rollup`), `avocet serve` runs on the data dir; Debian's Chromium
(Playwright) signs in once as an instance admin and loads `/ui/sites/{id}?period=P` for the
largest and the smallest site, for 30d and 12m. Per case: 2 warm-up loads, then `--loads`
timed loads, each followed by a replay of the API requests that load made (same URLs,
bodies and credentials), once all in parallel (6 connections, like a browser's per-host
limit) and once one after the other; the median of each.

"Ready" is the page's `avocet:ready` Performance mark (set when every panel has rendered),
relative to navigation start. A page without the mark is timed by its last stats API
response instead, and the report says so ("ready_by": "last API response").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.query import sites_by_size, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update"]
EMAIL = "bench@avocet.invalid"
PASSWORD = "bench password, not a secret"
PERIODS = ("30d", "12m")
WARM_LOADS = 2
BROWSER_CONNECTIONS = 6  # Chromium's HTTP/1.1 connections per host
API_PATHS = ("/api/v1/stats/", "/api/v2/query")
# What the page is waiting for: the mark, else (older page) the network to go quiet.
READY_JS = """async () => {
  const mark = () => performance.getEntriesByName('avocet:ready', 'mark')[0]
  const api = () => performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/api/v1/stats/') || e.name.includes('/api/v2/query'))
  const deadline = performance.now() + 30000
  let seen = -1, quietSince = performance.now()
  while (performance.now() < deadline) {
    if (mark()) return { ms: mark().startTime, by: 'avocet:ready mark', calls: api().length }
    const n = api().length
    if (n !== seen) { seen = n; quietSince = performance.now() }
    if (n > 0 && performance.now() - quietSince > 1500) break
    await new Promise(r => setTimeout(r, 20))
  }
  const m = mark()
  if (m) return { ms: m.startTime, by: 'avocet:ready mark', calls: api().length }
  return { ms: Math.max(...api().map(e => e.responseEnd)), by: 'last API response', calls: seen }
}"""
# Where a load's time went (ms from navigation start): the HTML's last byte, the modules
# evaluated (the page's avocet:start mark), the first API request sent, the last API
# answer received (of those sent before the ready mark), ready.
PHASES_JS = """() => {
  const at = name => { const m = performance.getEntriesByName(name, 'mark')[0]; return m ? m.startTime : null }
  const ready = at('avocet:ready')
  const api = performance.getEntriesByType('resource')
    .filter(e => (e.name.includes('/api/v1/stats/') || e.name.includes('/api/v2/query')) &&
      (ready == null || e.startTime < ready))
  const nav = performance.getEntriesByType('navigation')[0]
  return {
    html: nav ? nav.responseEnd : null,
    start: at('avocet:start'),
    first_request: api.length ? Math.min(...api.map(e => e.startTime)) : null,
    last_answer: api.length ? Math.max(...api.map(e => e.responseEnd)) : null,
    ready
  }
}"""
PHASES = ("html", "start", "first_request", "last_answer", "ready")


@dataclass(frozen=True)
class Call:
    """One API request the page made, as the replay repeats it."""

    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes | None


class Replayer:
    """Keep-alive stdlib connections (one per thread): ~0.1 ms of client cost a request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return conn

    def send(self, call: Call) -> None:
        try:
            response = self._request(call)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._local.conn = None  # the server closed an idle keep-alive connection
            response = self._request(call)
        body = response.read()
        if response.status != 200:
            raise SystemExit(
                f"{call.method} {call.path} answered {response.status}: {body[:200]!r}"
            )

    def _request(self, call: Call) -> http.client.HTTPResponse:
        conn = self._conn()
        conn.request(call.method, call.path, body=call.body, headers=call.headers)
        return conn.getresponse()

    def sequential_ms(self, calls: list[Call]) -> float:
        t0 = time.perf_counter()
        for call in calls:
            self.send(call)
        return (time.perf_counter() - t0) * 1000

    def parallel_ms(self, pool: ThreadPoolExecutor, calls: list[Call]) -> float:
        t0 = time.perf_counter()
        list(pool.map(self.send, calls))
        return (time.perf_counter() - t0) * 1000


def _calls(requests: list[Any]) -> list[Call]:
    keep = ("cookie", "authorization", "content-type", "accept", "x-csrf-token")
    found = []
    for request in requests:
        url = urllib.parse.urlsplit(request.url)
        if not url.path.startswith(API_PATHS):
            continue
        headers = {k: v for k, v in request.headers.items() if k.lower() in keep}
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.post_data_buffer if request.method == "POST" else None
        found.append(Call(request.method, path, headers, body))
    return found


def ensure_data(args: argparse.Namespace) -> None:
    """Generate the data dir when missing, top it up with today's events, build rollups."""
    py = sys.executable
    if not (args.data / "events.duckdb").exists():
        gen = [py, str(ROOT / "bench" / "dataset.py"), str(args.data), "--events", str(args.events)]
        gen += ["--sites", str(args.sites), "--days", str(args.days)]
        subprocess.run(gen, check=True)
    subprocess.run([py, str(ROOT / "bench" / "dataset.py"), str(args.data), "--today"], check=True)
    cli = [py, "-m", "app.cli", "--data-dir", str(args.data)]
    subprocess.run([*cli, "rollup"], check=True, cwd=ROOT)
    # An instance admin sees every site; creating it a second time fails harmlessly.
    subprocess.run(
        [*cli, "user", "create", EMAIL, "--admin", "--password-stdin"],
        input=PASSWORD.encode(),
        cwd=ROOT,
        capture_output=True,
    )


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/ui/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/ui/login" not in url)


def load_once(page: Any, url: str) -> tuple[dict[str, Any], list[Call]]:
    """One navigation: the page's ready time, its phases and the API requests it made
    before the ready mark (the current-visitors poll starts after it: not replayed)."""
    made: list[Any] = []

    def record(request: Any) -> None:
        made.append(request)

    page.on("request", record)
    try:
        page.goto(url, wait_until="commit")
        ready = page.evaluate(READY_JS)
        ready["phases"] = page.evaluate(PHASES_JS)
    finally:
        page.remove_listener("request", record)
    if ready["by"] == "avocet:ready mark" and "period=realtime" not in url:
        made = [r for r in made if "/api/v1/stats/realtime" not in r.url]
    return ready, _calls(made)


def bench_case(page: Any, replay: Replayer, url: str, loads: int) -> dict[str, Any]:
    for _ in range(WARM_LOADS):
        load_once(page, url)
    ready, parallel, sequential, counts, by = [], [], [], [], set()
    phases: dict[str, list[float]] = {k: [] for k in PHASES}
    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
        for _ in range(loads):
            result, calls = load_once(page, url)
            page.goto("about:blank")  # the realtime poll must not overlap the replay
            ready.append(result["ms"])
            for key in PHASES:
                if result["phases"].get(key) is not None:
                    phases[key].append(result["phases"][key])
            by.add(result["by"])
            counts.append(len(calls))
            replay.parallel_ms(pool, calls)  # warm this load's exact requests once
            parallel.append(replay.parallel_ms(pool, calls))
            sequential.append(replay.sequential_ms(calls))
    page_ms, par_ms = statistics.median(ready), statistics.median(parallel)
    return {
        "ready_ms": round(page_ms, 1),
        "api_parallel_ms": round(par_ms, 1),
        "api_sum_ms": round(statistics.median(sequential), 1),
        "ratio_to_parallel": round(page_ms / par_ms, 2) if par_ms else None,
        "api_calls": statistics.median(counts),
        "ready_by": " / ".join(sorted(by)),
        # Medians of each phase (ms from navigation start), and what the page spent after
        # the last API answer (rendering) and before its first request (HTML + modules).
        "phases_ms": {k: round(statistics.median(v), 1) for k, v in phases.items() if v},
        "ready_runs": [round(v, 1) for v in ready],
        "parallel_runs": [round(v, 1) for v in parallel],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    before = os.getloadavg()  # other work on the machine skews the figures: say how much
    ranked = sites_by_size(args.data)
    picked = [ranked[0], ranked[-1]] if len(ranked) > 1 else ranked
    proc = start_server(args.data, args.port)
    base = f"http://127.0.0.1:{args.port}"
    rows: dict[str, Any] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            sign_in(page, base)
            replay = Replayer(args.port)
            for site, events in picked:
                for period in PERIODS:
                    url = f"{base}/ui/sites/{site}?period={period}"
                    row = bench_case(page, replay, url, args.loads)
                    rows[f"{site} ({events} events) {period}"] = row
                    print(
                        f"{site} {events:>9} ev {period:>4}: ready {row['ready_ms']:>7} ms"
                        f"  API parallel {row['api_parallel_ms']:>7} ms"
                        f"  sum {row['api_sum_ms']:>7} ms  x{row['ratio_to_parallel']}"
                        f"  ({row['api_calls']} calls; {row['ready_by']})",
                        flush=True,
                    )
                    print(
                        "    phases (median ms from navigation): "
                        + ", ".join(f"{k} {v}" for k, v in row["phases_ms"].items()),
                        flush=True,
                    )
            browser.close()
    finally:
        proc.terminate()
        proc.wait()
    return {
        "cores": os.cpu_count(),
        "load_average_before": before,
        "load_average_after": os.getloadavg(),
        "loads": args.loads,
        "warm_loads": WARM_LOADS,
        "total_events": sum(n for _, n in ranked),
        "cases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument(
        "--small",
        action="store_true",
        help="a small data dir (200k events, 5 sites, 400 days) to try the benchmark out",
    )
    parser.add_argument("--loads", type=int, default=5, help="timed loads per case")
    parser.add_argument("--port", type=int, default=18091)
    args = parser.parse_args()
    if args.small:
        args.events, args.sites = 200_000, 5
    if args.data is None:
        args.data = ROOT / "bench" / ("data-dashboard-small" if args.small else "data-10m")
    ensure_data(args)
    print(f"{os.cpu_count()} cores; data {args.data}; load average {os.getloadavg()}", flush=True)
    report = run(args)
    print(f"load average after: {report['load_average_after']}", flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
