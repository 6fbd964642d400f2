"""Compaction: finished days' raw events rewritten in (site, session, time) order keep every
row and every answer, make the day's rows sit by site and session, and run by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.config import Settings
from app.jobs.lifecycle import compact, days_to_compact
from app.query.model import Query
from app.query.periods import day_range
from app.query.run import run_query_sync
from app.services import Services
from tests.test_lifecycle_cli import cli, kill_after, make_data

METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "revenue")
SHAPES: list[tuple[str, ...]] = [(), ("time:day",), ("source",), ("page",), ("country",)]


@contextmanager
def opened(data: Path) -> Iterator[Services]:
    svc = Services(Settings(data_dir=str(data), run_jobs=False))
    try:
        yield svc
    finally:
        svc.events.close()
        svc.meta.close()


def _answers(svc: Services) -> list[Any]:
    today = datetime.now(UTC).date()
    out = []
    for site in svc.meta.sites():
        period = day_range("30d", site.zone, today - timedelta(days=29), today)
        for dims in SHAPES:
            q = Query(site_id=site.id, period=period, metrics=METRICS, dimensions=dims)
            out.append(run_query_sync(svc.events, q).rows)
    return out


def _rows(svc: Services) -> list[tuple[Any, ...]]:
    return sorted(
        svc.events.query("SELECT * EXCLUDE (props), props::VARCHAR FROM events"), key=repr
    )


def test_compaction_keeps_rows_and_answers_and_orders_each_day(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 6_000)
    with opened(data) as svc:
        before_rows, before = _rows(svc), _answers(svc)
        now = datetime.now(UTC)
        pending = days_to_compact(svc.events, now)
        counts = dict(
            svc.events.query(
                "SELECT day, count(*) FROM events WHERE day <= ? GROUP BY day",
                [now.date() - timedelta(days=2)],
            )
        )
        assert pending == sorted(counts) and len(pending) > 30
        report = compact(svc.events, now)
        assert report.failed == {}
        assert report.done == {d.isoformat(): n for d, n in counts.items()}
        assert days_to_compact(svc.events, now) == []
        assert _rows(svc) == before_rows
        assert _answers(svc) == before
        # Each compacted day's rows, in storage order, run by site, then session, then time.
        day = pending[len(pending) // 2]
        stored = svc.events.query("SELECT site_id, session_id, ts FROM events WHERE day = ?", [day])
        assert stored == sorted(stored) and len(stored) == counts[day]
        # The two days before today (UTC) are not finished everywhere: left as they are.
        assert not {now.date(), now.date() - timedelta(days=1)} & set(pending)
        # A second run finds nothing to do.
        assert compact(svc.events, now).done == {}


def test_compact_command_by_hand(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 2_000)
    done = cli(data, "compact", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["failed"] == {} and len(body["done"]) > 30
    assert all(date.fromisoformat(d) for d in body["done"])
    again = cli(data, "compact")
    assert again.returncode == 0 and again.stdout.startswith("0 days compacted"), again.stdout


def test_kill_9_during_compaction_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 20_000)
    with opened(data) as svc:
        before_rows, before = _rows(svc), _answers(svc)
        total = len(days_to_compact(svc.events))
    # A line is printed before each day: at the fourth, three days are committed.
    kill_after(data, "compact", lines=4)
    with opened(data) as svc:
        left = len(days_to_compact(svc.events))
        assert 0 < left <= total - 3  # killed mid-way
        assert _rows(svc) == before_rows
        assert _answers(svc) == before
    again = cli(data, "compact", "--json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["done"]) == left
    with opened(data) as svc:
        assert days_to_compact(svc.events) == []
        assert _rows(svc) == before_rows
        assert _answers(svc) == before
