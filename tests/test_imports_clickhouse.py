"""Imports on ClickHouse cut short (issue #24): ClickHouse has no transaction to span an
import's writes, so an import stopped after any one of them must be rolled back whole by
the next start (settle_cut_short), and a delete stopped after any one of them finished.

Every write of the store (an insert or a DELETE) is durable when it returns (fsync), so a
stop right after the k-th write leaves on disk what a kill -9 there leaves: the test stops
the import by raising out of the (k+1)-th write, for every k, then settles the store the
way the next start does and compares what answers read (rollup rows after the hourly
rebuild, raw events, the import tables) with the state before; one case is a real kill -9
of a process mid-import. The fixture is tests/test_imports.py's GoatCounter export (2
days, 7 events) beside one native pageview on its first day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.imports import goatcounter
from app.imports.run import content_hash, delete_import, run_import, settle_cut_short
from app.query import rollup
from app.services import Services
from app.storage import import_jobs
from app.storage.clickhouse import imports as clickhouse
from app.storage.clickhouse.store import ClickHouseEventStore
from app.storage.events import EventStore
from tests.conftest import ROOT, free_port, start_live_server, stop_live_server
from tests.test_imports import GOAT, NATIVE_DAY, _native

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("chdb") is None,
    reason="the clickhouse extra is not installed",
)
TODAY = date(2025, 3, 10)


class Stop(BaseException):
    """The process stopping after a write (not an error anything catches)."""


@pytest.fixture(name="svc")
def svc_fixture(tmp_path: Path) -> Iterator[Services]:
    """A site on ClickHouse with the native pageview rolled up and pruned, and a raw window
    of 9 days on TODAY: the import's first day is rollups only (its rows are merged into
    the native day's), its second keeps raw events (copied in, the day's rollups dropped
    to be rebuilt), so one import takes every step there is."""
    svc = Services(
        Settings(
            data_dir=str(tmp_path / "data"),
            run_jobs=False,
            raw_retention_days=9,
            storage="clickhouse",
        )
    )
    site = svc.meta.add_site("example.com")
    _native(svc, site.id)
    rollup.build_rollups(svc.events, site.id, "UTC", [NATIVE_DAY])
    rollup.prune(svc.events, site.id, date(2025, 3, 2))
    try:
        yield svc
    finally:
        svc.events.close()
        svc.meta.close()


def state(svc: Services) -> dict[str, Any]:
    """What answers read, once the hourly job has rebuilt what a step dropped."""
    store, site = svc.events, svc.meta.sites()[0]
    rollup.build_rollups(store, site.id, "UTC", rollup.days_to_build(store, site.id, TODAY))
    found = {
        "rollups": store.query(
            "SELECT day, property, value, visitors, visits, pageviews, events, bounces,"
            " duration FROM daily_stats ORDER BY ALL"
        ),
        "days": store.query("SELECT day, events, pruned FROM rollup_days FINAL ORDER BY day"),
        "imported_events": store.query("SELECT count() FROM events WHERE session_id < 0")[0][0],
    }
    for table in ("imports", "import_days", "import_rollups", "import_steps"):
        final = " FINAL" if table == "import_steps" else ""  # its rows are replaced
        found[table] = store.query(f"SELECT count() FROM {table}{final}")[0][0]
    return found


AFTER = -1  # a stop at the first write after the store's steps (the job not finished)


@contextmanager
def stopping(store: Any, k: int) -> Iterator[None]:
    """Meanwhile the store stops (raises Stop) instead of the (k+1)-th write of an
    import's or delete's own steps (app/storage/clickhouse/imports.py), or with k = AFTER
    at the first write after them (the rollups the job then builds: a stop there leaves a
    whole import whose job never finished). The builds' own writes are rollups' (tested
    with rollups), so they are not counted: what is tested is every step of the import."""
    writes, inside, after = 0, False, False

    def counted(method: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            nonlocal writes
            if inside:
                writes += 1
                if k != AFTER and writes > k:
                    raise Stop(writes)
            elif after and k == AFTER:
                raise Stop("after")
            return method(*args, **kwargs)

        return write

    def steps(function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal inside, after
            inside = True
            try:
                return function(*args, **kwargs)
            finally:
                inside, after = False, True

        return run

    store._insert = counted(ClickHouseEventStore._insert.__get__(store))
    store.execute = counted(ClickHouseEventStore.execute.__get__(store))
    saved = clickhouse.apply_import, clickhouse.delete_import
    clickhouse.apply_import, clickhouse.delete_import = map(steps, saved)
    try:
        yield
    finally:
        clickhouse.apply_import, clickhouse.delete_import = saved
        for name in ("_insert", "execute"):
            store.__dict__.pop(name, None)


def do_import(svc: Services) -> import_jobs.ImportJob:
    site = svc.meta.sites()[0]
    job = import_jobs.create_job(
        svc.meta, site.id, "goatcounter", content_hash([GOAT]), [GOAT.name], "keep-both"
    )
    return run_import(
        svc.meta,
        svc.events,
        site,
        job,
        goatcounter.source(site.domain),
        [GOAT],
        raw_days=svc.settings.raw_retention_days,
        now=datetime(2025, 3, 10, 12),
    )


def test_an_import_or_delete_cut_short_after_any_write_is_settled_whole(svc: Services) -> None:
    site, days = svc.meta.sites()[0], svc.settings.raw_retention_days
    before = state(svc)
    assert before["imported_events"] == 0 and before["rollups"]
    stops = 0
    for k in [AFTER, *range(100)]:  # an import cut short after its k-th write: rolled back
        try:
            with stopping(svc.events, k):
                job = do_import(svc)
        except Stop:
            stops += 1
        else:
            if k != AFTER:
                break
            delete_import(svc.meta, svc.events, site, job, raw_days=days)  # no write after
        settle_cut_short(svc.meta, svc.events)
        assert state(svc) == before, f"import stopped after write {k}"
        assert import_jobs.list_jobs(svc.meta)[0].status in ("failed", "deleted")
    assert stops >= 7  # every step of the import was cut short once
    whole = state(svc)
    assert whole["imports"] == 1 and whole["import_steps"] == 0
    assert whole["imported_events"] == 2  # the second day's 2 pageviews
    totals = {r[0]: r[3:] for r in whole["rollups"] if r[1] == ""}
    # The native visit (1 visitor, 1 bounce) plus the import's 2 visitors and 3 visits
    # (4 pageviews, 5 events, 1 bounce, 420 s); the second day is the import's alone.
    assert totals[NATIVE_DAY] == (3, 4, 5, 6, 2, 420.0)
    assert totals[date(2025, 3, 2)] == (2, 2, 2, 2, 2, 0.0)

    deletes = 0
    for k in [AFTER, *range(100)]:  # a delete cut short after its k-th write: finished
        job = next(j for j in import_jobs.list_jobs(svc.meta) if j.status == "done")
        try:
            with stopping(svc.events, k):
                delete_import(svc.meta, svc.events, site, job, raw_days=days)
        except Stop:
            deletes += 1
        else:
            if k != AFTER:
                break
            assert state(svc) == before  # (nothing written after its steps here)
            assert do_import(svc).status == "done"
            continue
        settle_cut_short(svc.meta, svc.events)
        if k in (AFTER, 0):  # stopped before its first write, or after its last one
            gone = k == AFTER
            assert state(svc) == (before if gone else whole)
            assert import_jobs.get_job(svc.meta, job.id).status == "done"
            delete_import(svc.meta, svc.events, site, job, raw_days=days)  # asked again
            assert state(svc) == before
        else:
            assert state(svc) == before, f"delete stopped after write {k}"
            assert import_jobs.get_job(svc.meta, job.id).status == "deleted"
        assert do_import(svc).status == "done"  # the same export imports again
    assert deletes >= 5  # every step of the delete was cut short once
    assert state(svc) == before


KILLED = """
import os, sys
from datetime import datetime
from app.config import Settings
from app.imports import goatcounter
from app.imports.run import content_hash, run_import
from app.services import Services
from app.storage import import_jobs
from app.storage.clickhouse.store import ClickHouseEventStore
from tests.test_imports import GOAT

svc = Services(Settings(data_dir=sys.argv[1], run_jobs=False, storage="clickhouse",
                        raw_retention_days=100_000))
site = svc.meta.sites()[0]
inserted = ClickHouseEventStore._insert
def insert(self, table, data, token):
    inserted(self, table, data, token)
    if table == "events" and token.startswith("import:"):
        os.kill(os.getpid(), 9)  # the import's events are in; its record is not
ClickHouseEventStore._insert = insert
job = import_jobs.create_job(svc.meta, site.id, "goatcounter", content_hash([GOAT]),
                             [GOAT.name], "keep-both")
run_import(svc.meta, svc.events, site, job, goatcounter.source(site.domain), [GOAT],
           raw_days=100_000, now=datetime(2025, 3, 10, 12))
"""


def test_a_killed_import_process_is_rolled_back_by_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=str(data), run_jobs=False, storage="clickhouse")
    svc = Services(settings)
    svc.meta.add_site("example.com")
    svc.events.close()
    svc.meta.close()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, str(data)], cwd=ROOT, env=os.environ, check=False
    )
    assert killed.returncode == -9
    svc = Services(settings)
    assert isinstance(svc.events, ClickHouseEventStore)
    try:
        assert svc.events.query("SELECT count() FROM events") == [(7,)]  # what it left
        assert [j.status for j in import_jobs.list_jobs(svc.meta)] == ["running"]
        site_id = svc.meta.sites()[0].id
        assert svc.events.health()["imports_pending"] == [f"import 1 of site {site_id}"]
        settle_cut_short(svc.meta, svc.events)
        assert svc.events.query("SELECT count() FROM events") == [(0,)]
        assert state(svc) == {
            "rollups": [], "days": [], "imported_events": 0,
            "imports": 0, "import_days": 0, "import_rollups": 0, "import_steps": 0,
        }  # fmt: skip
        job = import_jobs.list_jobs(svc.meta)[0]
        assert (job.status, job.error) == (
            "failed",
            "interrupted: the process stopped before the import finished; nothing was added",
        )
    finally:
        svc.events.close()
        svc.meta.close()
    assert json.dumps(job.public())  # listed as any job


def test_imports_move_to_clickhouse_and_back_into_a_backup(tmp_path: Path) -> None:
    """`avocet migrate-storage` copies the imports' records with the events (a GoatCounter
    import as rollups only, a Plausible aggregate import): answers with imports are the
    same from ClickHouse, where the imports can then be deleted; a backup of the ClickHouse
    store (a DuckDB file) holds them again."""
    from tests.test_imports import _env, cli, new_data_dir
    from tests.test_imports_plausible import PLAUSIBLE

    data = new_data_dir(tmp_path)
    duck_env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "90"}
    for source, path in (("goatcounter", GOAT), ("plausible", PLAUSIBLE)):
        done = cli(data, "import", source, str(path), "--site", "example.com", env=duck_env)
        assert done.returncode == 0, done.stderr
    questions = [
        ("aggregate", {"metrics": "visitors,visits,pageviews,bounce_rate,visit_duration"}),
        ("breakdown", {"property": "source", "metrics": "visitors,visits"}),
        ("timeseries", {"metrics": "visitors,pageviews"}),
    ]

    def answers(storage: str) -> list[Any]:
        settings = Settings(
            data_dir=str(data), port=free_port(), open_stats_on_loopback=True,
            run_jobs=False, storage=storage,
        )  # fmt: skip
        live = start_live_server(settings)
        try:
            site_id = live.services.meta.sites()[0].id
            found = []
            for path, params in questions:
                response = httpx.get(
                    f"{live.url}/api/v1/stats/{path}",
                    params={"site_id": site_id, "period": "custom", "from": "2024-01-01",
                            "to": "2025-03-02", "with_imported": "true", **params},
                )  # fmt: skip
                assert response.status_code == 200, response.text
                body = response.json()
                found.append(body["metrics"] if path == "aggregate" else body["results"])
            return found
        finally:
            stop_live_server(live)

    on_duckdb = answers("duckdb")
    assert on_duckdb[0]["visitors"] == 4 + 10 + 5  # GoatCounter's 4, the Plausible days' 10 + 5
    moved = cli(data, "migrate-storage", "--to", "clickhouse", "--json", env=duck_env)
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["imports"] == 2
    assert answers("clickhouse") == on_duckdb

    ch_env = {**_env("clickhouse"), "AVOCET_RAW_RETENTION_DAYS": "90"}
    backup = cli(data, "backup", str(tmp_path / "backup"), env=ch_env)
    assert backup.returncode == 0, backup.stderr
    copy = EventStore(tmp_path / "backup" / "events.duckdb")
    original = EventStore(data / "events.duckdb")
    try:
        for table in ("imports", "import_days", "import_rollups", "imported_stats"):
            listed = f"SELECT * EXCLUDE (created_at) FROM {table} ORDER BY ALL"
            if table != "imports":
                listed = f"SELECT * FROM {table} ORDER BY ALL"
            assert copy.query(listed) == original.query(listed), table
    finally:
        copy.close()
        original.close()

    jobs = json.loads(cli(data, "import", "list", "--json", env=ch_env).stdout)
    for job in jobs:
        gone = cli(data, "import", "delete", job["id"], "--json", env=ch_env)
        assert gone.returncode == 0, gone.stderr
    store = ClickHouseEventStore(f"chdb://{data / 'clickhouse'}")
    try:
        for table in ("daily_stats", "rollup_days FINAL", "imports", "imported_stats"):
            assert store.query(f"SELECT count() FROM {table}") == [(0,)], table
    finally:
        store.close()
