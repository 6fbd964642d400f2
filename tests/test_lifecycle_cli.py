"""`avocet rollup` / `avocet prune` on a real data dir: by hand, refused while the server
runs, and safe to kill -9 in the middle."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.config import Settings
from app.query import rollup
from app.query.answer import answer_sync
from app.query.model import Order, Query
from app.query.periods import day_range
from app.query.render import metrics_of
from app.query.run import run_query_sync
from app.services import Services
from bench.dataset import load
from tests.conftest import ROOT, ServeProcess

METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "revenue")


def make_data(data: Path, events: int) -> None:
    """Events on the 40 days before today, through the real pipeline (bench/dataset.py)."""
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        load(svc, events, sites=2, days=40, seed=3)
        svc.events.checkpoint()
    finally:
        svc.events.close()
        svc.meta.close()


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def kill_after(data: Path, command: str, lines: int) -> None:
    """Run `avocet COMMAND --progress` and kill -9 it once it has printed `lines` lines of
    progress (each printed before a unit of work: the ones before it are committed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), command, "--progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for _ in range(lines):
        assert proc.stderr.readline().strip(), f"{command} ended before {lines} lines"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def answers_agree(data: Path) -> None:
    """For each site: the 30-day aggregate and daily series from rollups equal raw."""
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        today = datetime.now(UTC).date()
        for site in svc.meta.sites():
            period = day_range("30d", site.zone, today - timedelta(days=29), today)
            for dims in ((), ("time:day",)):
                q = Query(
                    site_id=site.id,
                    period=period,
                    metrics=METRICS,
                    dimensions=dims,
                    order_by=(Order("time", False),) if dims else (),
                    site_timezone=site.timezone,
                )
                got = answer_sync(svc.events, q)
                assert got.from_rollups
                raw = run_query_sync(svc.events, q)
                assert [metrics_of(r, METRICS) for r in got.rows] == [
                    metrics_of(r, METRICS) for r in raw.rows
                ]
    finally:
        svc.events.close()
        svc.meta.close()


def test_rollup_and_prune_by_hand(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 20_000)
    first = cli(data, "rollup", "--json")
    assert first.returncode == 0, first.stderr
    built = json.loads(first.stdout)
    assert built["failed"] == {}
    assert all(n >= 39 for n in built["done"].values())
    assert json.loads(cli(data, "rollup", "--json").stdout)["done"] == dict.fromkeys(
        built["done"], 0
    )
    answers_agree(data)

    dry = json.loads(cli(data, "--data-dir", str(data), "prune", "--dry-run", "--json").stdout)
    assert all(n == 0 for n in dry["done"].values())  # 40 days < 90: nothing is old enough
    env_dry = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "prune", "--dry-run", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"AVOCET_RAW_RETENTION_DAYS": "10", "PATH": "/usr/bin:/bin"},
    )
    would = json.loads(env_dry.stdout)["done"]
    assert all(n > 0 for n in would.values())
    pruned = subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), "prune", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"AVOCET_RAW_RETENTION_DAYS": "10", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(pruned.stdout)["done"] == would
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        oldest = svc.events.query("SELECT min(day) FROM events")[0][0]
        assert oldest >= datetime.now(UTC).date() - timedelta(days=10)
        kept = svc.events.query("SELECT count(*) FROM rollup_days WHERE pruned")[0][0]
        assert kept > 0
    finally:
        svc.events.close()
        svc.meta.close()


def test_rollup_is_run_by_the_server_while_it_runs(serve_process: ServeProcess) -> None:
    serve_process.start()
    result = serve_process.cli("rollup", "--json")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        '{"done":{},"failed":{}}\n',
        "",
    )


def test_kill_9_during_rollup_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 60_000)
    kill_after(data, "rollup", lines=2)
    # Progress is printed before each site: the second line means the first site's rollup
    # is committed and the second one's is being built; killed there.
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        today = datetime.now(UTC).date()
        left = [len(rollup.days_to_build(svc.events, s.id, today)) for s in svc.meta.sites()]
        assert sorted(left)[0] == 0 and sorted(left)[1] > 0  # killed mid-way
    finally:
        svc.events.close()
        svc.meta.close()
    again = cli(data, "rollup", "--json")
    assert again.returncode == 0, again.stderr
    answers_agree(data)
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        for site in svc.meta.sites():
            assert rollup.days_to_build(svc.events, site.id, datetime.now(UTC).date()) == []
    finally:
        svc.events.close()
        svc.meta.close()
