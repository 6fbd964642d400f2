"""Ingest benchmark: the full pipeline vs a bare Litestar endpoint, measured in one run.

Each server runs pinned to one core (taskset), wrk runs pinned to the other, with a Lua
script that sends varied, realistic hits (20 sites, 300 user agents, 12k paths, random
IPs, referrers, UTM tags, custom events with props and revenue). Then:
- every acknowledged event must be in DuckDB after the run,
- RSS of the server after the run, and bytes per event on disk after a checkpoint,
- bytes per event for a larger table built by the same pipeline code without HTTP.

    .venv/bin/python bench/ingest.py [--seconds 30] [--connections 64] [--storage-events 1000000]
                                     [--storage-days 30]
                                     [--repeat N] [--hits-per-visitor 4] [--warmup 3]
                                     [--jobs [--history 300000]] [--trace]

--jobs seeds 30 past days and makes the server run its rollup, prune and compaction jobs
during the measured load; --trace adds a second server whose load is 1-second wrk runs, for
a per-second p99/max plot (bench/results/ingest-trace*.png) marking checkpoints, journal
use and the jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVER_CORE, LOAD_CORE = "1", "0"


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


HITS_PER_VISITOR = "4"  # set by --hits-per-visitor; the Lua script reads it
WARMUP_SECONDS = 3  # set by --warmup: load before the measured run, the same for both servers


def run_wrk(port: int, seconds: int, connections: int, sites: list[str]) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(ROOT / "bench" / "load.lua"),
        f"http://127.0.0.1:{port}/collect",
    ]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "SITES": ",".join(sites), "HITS_PER_VISITOR": HITS_PER_VISITOR},
        check=True,
    ).stdout
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    result: dict[str, float] = {}
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in ([\d.]+)s", out)
    assert total
    result["requests"] = float(total.group(1))
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        result[f"p{pct}_ms"] = _ms(m.group(1), m.group(2))
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out, re.M)
    assert latency, out
    result["max_ms"] = _ms(latency.group(1), latency.group(2))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    socket = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = socket.group(1) if socket else "none"  # type: ignore[assignment]
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_bare(port: int, seconds: int, connections: int, sites: list[str]) -> dict[str, float]:
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, PY, str(ROOT / "bench" / "bare_app.py"), str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/collect")
        if WARMUP_SECONDS:
            run_wrk(port, WARMUP_SECONDS, connections, sites)
        return run_wrk(port, seconds, connections, sites)
    finally:
        proc.terminate()
        proc.wait()


def cli(data: Path, *args: str) -> str:
    return subprocess.run(
        [PY, "-m", "app.cli", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def seed_history(data: Path, events: int, days: int) -> list[str]:
    """Past days of events through the real pipeline (bench/dataset.py), for the lifecycle
    jobs to work on during the load; returns the 20 site ids."""
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime, timedelta

    from app.config import Settings
    from app.services import Services
    from bench.dataset import load

    svc = Services(Settings(data_dir=str(data)))
    try:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        load(svc, events, sites=20, days=days, seed=7, end=end - timedelta(seconds=1))
        return [s.id for s in svc.meta.sites()]
    finally:
        svc.events.close()
        svc.meta.close()


JOBS = ("rollup", "prune", "compact")


def force_jobs(data: Path, log: list[tuple[float, float, str]], start_at: float) -> None:
    """Run the lifecycle jobs in the server (the CLI hands them over its control socket),
    one after the other, from start_at (a time.time()), noting when each ran."""
    time.sleep(max(0.0, start_at - time.time()))
    for job in JOBS:
        began = time.time()
        cli(data, job)
        log.append((began, time.time(), job))


class FileWatch:
    """Polls the WAL and the journal beside events.duckdb every 20 ms: a WAL that shrinks
    is a checkpoint; a journal that is not empty means ingest went to it."""

    def __init__(self, data: Path) -> None:
        self.wal = data / "events.duckdb.wal"
        self.journal = data / "events.duckdb.journal"
        self.marks: list[tuple[float, str]] = []
        self.stop = False

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def run(self) -> None:
        last_wal = 0
        while not self.stop:
            wal, journal = self._size(self.wal), self._size(self.journal)
            now = time.time()
            if wal < last_wal:
                self.marks.append((now, "checkpoint"))
            if journal:
                self.marks.append((now, "journal"))
            last_wal = wal
            time.sleep(0.02)


def trace_seconds(
    port: int, seconds: int, connections: int, sites: list[str]
) -> list[dict[str, float]]:
    """The same load as one run, as `seconds` back-to-back 1-second wrk runs: each second's
    rate, p99 and max latency, stamped with its start (time.time())."""
    out = []
    for _ in range(seconds):
        began = time.time()
        second = run_wrk(port, 1, connections, sites)
        keys = ("rps", "p99_ms", "max_ms", "requests")
        out.append({"t": began, **{k: second[k] for k in keys}})
    return out


def bench_avocet(
    data: Path,
    port: int,
    seconds: int,
    connections: int,
    *,
    history: int = 0,
    jobs: bool = False,
    trace: bool = False,
) -> dict[str, Any]:
    if history:
        sites = seed_history(data, history, 30)
    else:
        sites = [
            json.loads(cli(data, "site", "add", f"site{i}.example", "--json"))["id"]
            for i in range(20)
        ]
    env = {**os.environ, "AVOCET_LOG_LEVEL": "warning", "AVOCET_DUCKDB__THREADS": "1"}
    if jobs:
        # A week of raw events kept: prune has 3 weeks of the history to delete, compaction
        # the week's finished days to rewrite; the scheduler's own runs stay out of the way.
        env |= {"AVOCET_RAW_RETENTION_DAYS": "7"}
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            PY,
            "-m",
            "app.cli",
            "--data-dir",
            str(data),
            "serve",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
    )
    import threading

    started = time.time() - 1
    watch = FileWatch(data)
    watcher = threading.Thread(target=watch.run, daemon=True)
    job_log: list[tuple[float, float, str]] = []
    try:
        wait_up(f"http://127.0.0.1:{port}/collect")
        warmup = run_wrk(port, WARMUP_SECONDS, connections, sites) if WARMUP_SECONDS else {}
        watcher.start()
        runner = None
        if jobs:  # the jobs start 3 s into the measured window
            runner = threading.Thread(target=force_jobs, args=(data, job_log, time.time() + 3))
            runner.start()
        result: dict[str, Any]
        if trace:  # the window as 1-second runs: a p99 and max for each second
            result = {"trace": trace_seconds(port, seconds, connections, sites)}
            result["requests"] = sum(s["requests"] for s in result["trace"])
        else:
            result = dict(run_wrk(port, seconds, connections, sites))
        if runner is not None:
            runner.join()
        result["warmup_requests"] = warmup.get("requests", 0)
        result["jobs"] = job_log
        watch.stop = True
        result["marks"] = watch.marks
        time.sleep(0.5)
        result["rss_mb"] = rss_mb(proc.pid)
        health = httpx.get(f"http://127.0.0.1:{port}/api/health").json()
        result["dropped"] = sum(health["dropped"].values())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    # The load's events: stamped after the server started (the history ends before today).
    result["stored"] = con.execute(  # type: ignore[index]
        "SELECT count(*) FROM events WHERE ts >= to_timestamp(?)::TIMESTAMPTZ AT TIME ZONE 'UTC'",
        [started],
    ).fetchone()[0]
    everything = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    con.close()
    result["bytes_per_event"] = (data / "events.duckdb").stat().st_size / max(everything, 1)
    result["sites"] = sites  # type: ignore[assignment]
    return result


def bench_storage(data: Path, events: int, days: int) -> dict[str, float]:
    """Bytes per event for a bigger table (`days` days), built by the real pipeline code (no
    HTTP), twice: as ingested, and with the server's compaction job run after each day the
    way a running server runs it (finished days compacted, the last two days not yet), so
    its file size is a long-running server's, freed blocks reused by later appends."""
    sys.path.insert(0, str(ROOT))
    from app.config import Settings
    from app.jobs.lifecycle import compact
    from app.services import Services
    from bench.dataset import load

    out: dict[str, float] = {}
    for name, compacting in (("plain", False), ("compacted", True)):
        svc = Services(Settings(data_dir=str(data / name)))
        t0 = time.perf_counter()
        stored = load(
            svc,
            events,
            sites=20,
            days=days,
            seed=1,
            after_day=(lambda now, store=svc.events: compact(store, now)) if compacting else None,
        )
        elapsed = time.perf_counter() - t0
        svc.events.checkpoint()
        used = svc.events.query("SELECT used_blocks, block_size FROM pragma_database_size()")[0]
        svc.events.close()
        size = (data / name / "events.duckdb").stat().st_size
        prefix = "" if name == "plain" else "compacted_"
        out["events"] = stored
        out[f"{prefix}bytes_per_event"] = size / stored
        out[f"{prefix}bytes_per_event_used"] = used[0] * used[1] / stored
        if not compacting:
            out["pipeline_events_per_s"] = stored / elapsed
    return out


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (its own latencies, RSS and sizes, not mixed ones)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--storage-events", type=int, default=1_000_000)
    parser.add_argument(
        "--storage-days",
        type=int,
        default=30,
        help="days the storage events span (the compaction job's freed blocks stay ~9 MB:"
        " the longer the span, the closer file size comes to used blocks)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run Avocet and bare this many times each, alternating; report medians",
    )
    parser.add_argument(
        "--hits-per-visitor",
        type=int,
        default=4,
        help="hits each simulated visitor sends (1: every hit a new visitor, the worst case)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of the same load before each measured run (not measured; 0: none)",
    )
    parser.add_argument(
        "--jobs",
        action="store_true",
        help="seed 30 past days of events (--history) and run the rollup, prune and"
        " compaction jobs in the server during the measured load",
    )
    parser.add_argument("--history", type=int, default=300_000, help="events seeded for --jobs")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="after the measured run, the same load as 1-second runs: per-second p99 and max,"
        " with checkpoints, journal use and jobs marked; a PNG plot under bench/results/",
    )
    args = parser.parse_args()
    global HITS_PER_VISITOR, WARMUP_SECONDS
    HITS_PER_VISITOR = str(args.hits_per_visitor)
    WARMUP_SECONDS = args.warmup
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="avocet-bench-"))
    try:
        avocets, bares = [], []
        for i in range(args.repeat):
            avocets.append(
                bench_avocet(
                    tmp / f"live{i}",
                    18081,
                    args.seconds,
                    args.connections,
                    history=args.history if args.jobs else 0,
                    jobs=args.jobs,
                )
            )
            bares.append(bench_bare(18082, args.seconds, args.connections, avocets[-1]["sites"]))  # type: ignore[arg-type]
        avocet, bare = median_run(avocets), median_run(bares)
        traced = (
            bench_avocet(
                tmp / "traced",
                18083,
                args.seconds,
                args.connections,
                history=args.history if args.jobs else 0,
                jobs=args.jobs,
                trace=True,
            )
            if args.trace
            else None
        )
        storage = (
            bench_storage(tmp / "bulk", args.storage_events, args.storage_days)
            if args.storage_events
            else {}
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "cores": os.cpu_count(),
        "seconds": args.seconds,
        "connections": args.connections,
        "hits_per_visitor": args.hits_per_visitor,
        "warmup_seconds": args.warmup,
        "bare": bare,
        "avocet": {k: v for k, v in avocet.items() if k != "sites"},
        "ratio_rps": avocet["rps"] / bare["rps"],
        "runs": {
            "avocet_rps": [r["rps"] for r in avocets],
            "avocet_p99_ms": [r["p99_ms"] for r in avocets],
            "bare_rps": [r["rps"] for r in bares],
            "bare_p99_ms": [r["p99_ms"] for r in bares],
        },
        "p99_ratio": avocet["p99_ms"] / bare["p99_ms"],
        "jobs_forced": args.jobs,
        "acknowledged_all_stored": all(
            r["stored"] >= r["warmup_requests"] + r["requests"] - r["dropped"]
            for r in [*avocets, *([traced] if traced else [])]
        ),
        "trace": (
            {k: traced[k] for k in ("trace", "jobs", "marks", "stored", "requests")}
            if traced
            else None
        ),
        "storage": storage,
    }
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"ingest-{stamp}.json").write_text(json.dumps(report, indent=2))
    if args.trace:
        name = f"ingest-trace{'-jobs' if args.jobs else ''}-{stamp}.png"
        plot_trace(traced, out / name)  # type: ignore[arg-type]
        print(f"plot: bench/results/{name}")


def plot_trace(run: dict[str, Any], png: Path) -> None:
    """The per-second p99 and max as an SVG chart, rasterised by Chromium (no plotting
    library to install): marks for checkpoints, journal use and the jobs."""
    from playwright.sync_api import sync_playwright

    trace = run["trace"]
    t0 = trace[0]["t"]
    w, h, left, top, bottom = 900, 360, 60, 40, 50
    top_ms = max(50.0, max(s["max_ms"] for s in trace) * 1.1)
    n = len(trace)

    def x(t: float) -> float:
        return left + (t - t0) / n * (w - left - 20)

    def y(ms: float) -> float:
        return top + (1 - min(ms, top_ms) / top_ms) * (h - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">'
    ]
    parts.append(f'<rect width="{w}" height="{h}" fill="#fff"/>')
    for ms in range(0, int(top_ms) + 1, 10):
        parts.append(f'<line x1="{left}" x2="{w - 20}" y1="{y(ms)}" y2="{y(ms)}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y(ms) + 4}" text-anchor="end" fill="#666">{ms}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{w - 20}" y1="{y(50)}" y2="{y(50)}" stroke="#c62828" stroke-dasharray="4 3"/>'
    )
    for began, ended, job in run.get("jobs", []):
        parts.append(
            f'<rect x="{x(began)}" y="{top}" width="{max(2, x(ended) - x(began))}" height="{h - top - bottom}" fill="#1565c0" opacity=".08"/>'
        )
        parts.append(f'<text x="{x(began) + 3}" y="{top + 12}" fill="#1565c0">{job}</text>')
    for when, what in run.get("marks", []):
        if t0 <= when <= t0 + n:
            color = "#ef6c00" if what == "checkpoint" else "#6a1b9a"
            parts.append(
                f'<line x1="{x(when)}" x2="{x(when)}" y1="{h - bottom}" y2="{h - bottom + 8}" stroke="{color}"/>'
            )
    for key, color in (("max_ms", "#c62828"), ("p99_ms", "#2e7d32")):
        points = " ".join(f"{x(s['t'] + 0.5)},{y(s[key])}" for s in trace)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
    parts.append(
        f'<text x="{left}" y="20" font-size="14" fill="#222">Avocet ingest, per second: p99 (green) and max (red) latency, ms; 50 ms dashed; ticks: checkpoint (orange), journal in use (purple)</text>'
    )
    for sec in range(0, n + 1, 5):
        parts.append(
            f'<text x="{x(t0 + sec)}" y="{h - bottom + 20}" text-anchor="middle" fill="#666">{sec}</text>'
        )
    parts.append(f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle" fill="#666">seconds</text>')
    parts.append("</svg>")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": w, "height": h})
        page.set_content("<body style=margin:0>" + "".join(parts))
        page.screenshot(path=str(png))
        browser.close()


if __name__ == "__main__":
    main()
