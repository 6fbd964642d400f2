"""Ingest over many collectors (issue #24): the same wrk load (bench/load.lua, 1,024
connections in all: many visitors, each waiting on its answer, not a few fast clients) against 1, 2 and 4
`avocet collector` processes, with 2 sessionizers and `avocet serve` as the control plane
on chdb, all on loopback; and, in the same run, `avocet serve` alone on chdb taking the
load itself (the one-node baseline), at each [clickhouse] insert_interval_ms compared.

    .venv/bin/python bench/cluster.py [--seconds 20] [--collectors 1,2,4]
                                      [--intervals 0,200,1000]

Every process shares this machine's cores (no pinning: a cluster's point is more
machines, which a benchmark on one machine can't show; what it shows is what the extra
hop costs, and whether collectors add throughput while cores are left). After each run
the store is read: every acknowledged hit must be stored, once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import parse_wrk

PY = sys.executable
SECRET = "bench-" + "s" * 40
SESSIONIZERS = 2


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_health(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode})")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start(role: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "app.cli", role, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wrk(urls: list[str], seconds: int, connections: int, sites: list[str]) -> dict[str, Any]:
    """One wrk per URL at once, the connections split between them; requests summed,
    latency percentiles the worst of them."""
    each = max(1, connections // len(urls))
    procs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{each}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(ROOT / "bench" / "load.lua"),
                f"{url}/collect",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "SITES": ",".join(sites), "HITS_PER_VISITOR": "4"},
        )
        for url in urls
    ]
    parts = [parse_wrk(p.communicate()[0]) for p in procs]
    return {
        "rps": round(sum(p["rps"] for p in parts)),
        "requests": int(sum(p["requests"] for p in parts)),
        "non_2xx": int(sum(p["non_2xx"] for p in parts)),
        "p50_ms": max(p["p50_ms"] for p in parts),
        "p99_ms": max(p["p99_ms"] for p in parts),
        "max_ms": max(p["max_ms"] for p in parts),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commits_of(url: str) -> int:
    return int(httpx.get(f"{url}/api/health", timeout=10).json()["events"]["commits"])


def stored(data: Path) -> int:
    from app.storage.clickhouse.store import ClickHouseEventStore

    store = ClickHouseEventStore(f"chdb://{data / 'clickhouse'}")
    try:
        return int(store.query("SELECT count() FROM events")[0][0])
    finally:
        store.close()


def run(collectors: int, seconds: int, connections: int, interval_ms: int) -> dict[str, Any]:
    """A fresh cluster (collectors = 0: serve alone), the load, then the stored count."""
    data = Path(tempfile.mkdtemp(prefix="avocet-cluster-"))
    env = {
        **os.environ,
        "AVOCET_STORAGE": "clickhouse",
        "AVOCET_CLUSTER__SECRET": SECRET,
        "AVOCET_LOG_LEVEL": "warning",
        "AVOCET_RUN_JOBS": "false",
        # The load is 64 clients' worth of IPs from one address: no per-IP or site limit.
        "AVOCET_LIMITS__COLLECT_IP_PER_MINUTE": "100000000",
        "AVOCET_LIMITS__COLLECT_SITE_PER_MINUTE": "100000000",
        "AVOCET_DATA_DIR": str(data),
        "AVOCET_SERVER__MAX_CONNECTIONS": "4096",
        "AVOCET_CLICKHOUSE__INSERT_INTERVAL_MS": str(interval_ms),
    }
    sites = []
    for i in range(4):
        out = subprocess.run(
            [PY, "-m", "app.cli", "site", "add", f"site{i}.example", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        sites.append(json.loads(out)["id"])
    control_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    s_ports: list[int] = []
    try:
        control = start("serve", control_port, env)
        procs.append(control)
        wait_health(f"http://127.0.0.1:{control_port}", control)
        urls = [f"http://127.0.0.1:{control_port}"]
        if collectors:
            node_env = {
                **env,
                "AVOCET_DATA_DIR": str(data / "node"),
                "AVOCET_CLUSTER__CONTROL_URL": f"http://127.0.0.1:{control_port}",
            }
            s_ports = [free_port() for _ in range(SESSIONIZERS)]
            node_env["AVOCET_CLUSTER__SESSIONIZERS"] = ",".join(
                f"http://127.0.0.1:{p}" for p in s_ports
            )
            c_ports = [free_port() for _ in range(collectors)]
            nodes = [(start("sessionizer", p, node_env), p) for p in s_ports]
            nodes += [(start("collector", p, node_env), p) for p in c_ports]
            procs += [p for p, _ in nodes]
            for proc, port in nodes:
                wait_health(f"http://127.0.0.1:{port}", proc)
            urls = [f"http://127.0.0.1:{p}" for p in c_ports]
        warm = wrk(urls, 3, connections, sites)  # warm-up: parsers' caches, first parts
        roles = (
            ["control"]
            + ["sessionizer"] * (len(procs) - 1 - collectors)
            + ["collector"] * collectors
        )
        before = [cpu_seconds(p.pid) for p in procs]
        writers = urls if not collectors else [f"http://127.0.0.1:{p}" for p in s_ports]
        commits = sum(commits_of(url) for url in writers)
        result = wrk(urls, seconds, connections, sites)
        # Inserts into ClickHouse per second: each is a part its merges must fold in.
        result["inserts_per_s"] = round(
            (sum(commits_of(u) for u in writers) - commits) / seconds, 1
        )
        spent: dict[str, float] = {}
        for role, proc, was in zip(roles, procs, before, strict=True):
            spent[role] = round(spent.get(role, 0.0) + cpu_seconds(proc.pid) - was, 1)
        # CPU seconds per 1,000 stored hits, by role: what each hop costs.
        result["cpu_ms_per_hit"] = {
            r: round(1000 * v / result["requests"], 3) for r, v in spent.items()
        }
        # Answered 2xx; a request open when wrk stopped may be stored without being counted.
        result["acked"] = sum(r["requests"] - r["non_2xx"] for r in (warm, result))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    result["stored"] = stored(data)  # read once the server is gone (chdb: one process)
    shutil.rmtree(data, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=1024)
    parser.add_argument("--collectors", default="1,2,4")
    parser.add_argument(
        "--intervals", default="0,200,1000", help="[clickhouse] insert_interval_ms to compare"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    print(f"cores: {os.cpu_count()}, {args.seconds} s per run, {args.connections} connections")
    intervals = [int(n) for n in args.intervals.split(",")]
    runs = [(0, ms) for ms in intervals]
    runs += [(int(n), 200) for n in args.collectors.split(",") if n]
    for n, ms in runs:
        result = run(n, args.seconds, args.connections, ms)
        label = (
            "serve alone (chdb)" if n == 0 else f"{n} collector(s) + {SESSIONIZERS} sessionizers"
        )
        print(f"{label}, insert_interval_ms {ms}:", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
