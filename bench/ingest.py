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


def bench_avocet(data: Path, port: int, seconds: int, connections: int) -> dict[str, float]:
    sites = [
        json.loads(cli(data, "site", "add", f"site{i}.example", "--json"))["id"] for i in range(20)
    ]
    env = {**os.environ, "AVOCET_LOG_LEVEL": "warning", "AVOCET_DUCKDB__THREADS": "1"}
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
    try:
        wait_up(f"http://127.0.0.1:{port}/collect")
        warmup = run_wrk(port, WARMUP_SECONDS, connections, sites) if WARMUP_SECONDS else {}
        result = run_wrk(port, seconds, connections, sites)
        result["warmup_requests"] = warmup.get("requests", 0)
        time.sleep(0.5)
        result["rss_mb"] = rss_mb(proc.pid)
        health = httpx.get(f"http://127.0.0.1:{port}/api/health").json()
        result["dropped"] = sum(health["dropped"].values())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    con = duckdb.connect(str(data / "events.duckdb"), read_only=True)
    result["stored"] = con.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    con.close()
    result["bytes_per_event"] = (data / "events.duckdb").stat().st_size / max(result["stored"], 1)
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
            avocets.append(bench_avocet(tmp / f"live{i}", 18081, args.seconds, args.connections))
            bares.append(bench_bare(18082, args.seconds, args.connections, avocets[-1]["sites"]))  # type: ignore[arg-type]
        avocet, bare = median_run(avocets), median_run(bares)
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
        "acknowledged_all_stored": all(
            r["stored"] >= r["warmup_requests"] + r["requests"] - r["dropped"] for r in avocets
        ),
        "storage": storage,
    }
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
