"""Deletion that deletes: a site's deletion and a reset of its stats run as resumable jobs;
killed with -9 in the middle while hits keep arriving for it and for another site, restarted,
they finish, and nothing of what they deleted is left in any file of the data dir (grepped
after a checkpoint), while the other site lost nothing. On both events stores (issue #24).
On ClickHouse the job says done only once the parts its rows were in are removed from
disk (ClickHouseEventStore.rewrite waits for ClickHouse's cleanup), so the grep holds there
too."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.ingest.sites import SiteDirectory
from app.jobs.lifecycle import rollup_sites
from app.storage.events import EventStore
from app.storage.goals import add_goal
from app.storage.store import Store
from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings
from tests.conftest import (
    CHROME_UA,
    ServeProcess,
    free_port,
    read_any,
    start_live_server,
    stop_live_server,
)
from tests.stats_env import STORAGES

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DAYS_BACK = (3, 2)  # finished days with events, rolled up before the deletion


@dataclass
class Seeded:
    token: str
    gone: str  # the site deleted (or reset)
    kept: str  # the other site
    gone_domain: str
    secrets: list[bytes]  # values only the deleted data holds
    kept_rollups: list[tuple[Any, ...]] = field(default_factory=list)
    kept_events: int = 0


def _ts(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def seed(tmp_path: Path, storage: str = "duckdb") -> Seeded:
    """Two sites with server-side events on past days (rolled up), bot hits, a goal and an
    API key; served in-process (so the test reads the stores), then stopped cleanly."""
    live = start_live_server(auth_settings(tmp_path, run_jobs=False, storage=storage))
    world = World(live)
    try:
        owner = world.user("owner@example.com")
        gone = world.site("gone-zq7.example", owner)
        kept = world.site("kept.example", owner)
        add_goal(world.meta, gone, "page", "/zq7-goal-path", "Visit zq7")
        token = world.key(owner, None, ALL_SCOPES)
        world.key(owner, gone, ("stats:read",))  # bound to the site: deleted with it
        today = datetime.now(UTC).date()
        with world.bearer(token) as http:
            for back in DAYS_BACK:
                day = today - timedelta(days=back)
                for site, domain, tag in ((gone, "gone-zq7.example", "zq7-secret"),
                                          (kept, "kept.example", "plain")):  # fmt: skip
                    for i in range(5):
                        body = {
                            "site_id": site,
                            "name": "pageview",
                            "url": f"https://{domain}/{tag}-page-{back}-{i}",
                            "ip": f"203.0.113.{i + 1}",
                            "user_agent": CHROME_UA,
                            "timestamp": _ts(day, 10 + i),
                        }
                        assert http.post("/api/v1/events", json=body).status_code == 202
            for site in (gone, kept):
                bot = {"n": "pageview", "u": "https://x.example/", "s": site}
                http.post("/collect", content=json.dumps(bot), headers={"User-Agent": BOT_UA})
        svc = live.services
        report = rollup_sites(svc.events, svc.sites.all())
        assert report.done == {gone: 2, kept: 2}
        live.wait_rows("SELECT * FROM bot_counts", [], 2)
        kept_rollups = read_any(
            svc.events, "SELECT * FROM daily_stats WHERE site_id = ? ORDER BY ALL", [kept]
        )
        kept_events = read_any(svc.events, "SELECT count(*) FROM events WHERE site_id = ?", [kept])
    finally:
        stop_live_server(live)
    return Seeded(
        token=token,
        gone=gone,
        kept=kept,
        gone_domain="gone-zq7.example",
        secrets=[gone.encode(), b"gone-zq7", b"zq7-secret", b"zq7-goal-path"],
        kept_rollups=kept_rollups,
        kept_events=int(kept_events[0][0]),
    )


class Firehose:
    """Hits for both sites from a thread until stopped; counts the other site's hits that
    were stored (Plausible's endpoint answers 202 without X-Plausible-Dropped only then)."""

    def __init__(self, url: str, seeded: Seeded, tag: bytes, net: int = 0) -> None:
        """tag: in the deleted site's paths; net: the clients' 10.0.<net>.x range (visitors
        of another Firehose never continue its sessions, whose first page they'd copy)."""
        self.url, self.seeded, self.tag, self.net = url, seeded, tag.decode(), net
        self.kept_stored = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"User-Agent": CHROME_UA}, timeout=5) as c:
            i = 0
            while not self._stop.is_set():
                i += 1
                for domain in (self.seeded.gone_domain, "kept.example"):
                    path = f"/{self.tag}-{i}" if domain != "kept.example" else f"/live-{i}"
                    body = {"name": "pageview", "url": f"https://{domain}{path}", "domain": domain}
                    try:
                        r = c.post(
                            "/api/event",
                            json=body,
                            headers={"X-Forwarded-For": f"10.0.{self.net}.{i % 250}"},
                        )
                    except httpx.TransportError:
                        return  # the server died: nothing more was acknowledged
                    stored = r.status_code == 202 and "X-Plausible-Dropped" not in r.headers
                    if domain == "kept.example" and stored:
                        self.kept_stored += 1
                time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for(http: httpx.Client, rid: str, done: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/api/v1/deletions/{rid}").json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def grep_data_dir(data_dir: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            blob = path.read_bytes()
            found += [(path.name, n) for n in needles if n in blob]
    return found


@contextmanager
def stopped_store(data_dir: Path, storage: str) -> Iterator[Store]:
    """The events store of a stopped data dir."""
    store: Store
    if storage == "clickhouse":
        from app.storage.clickhouse.store import ClickHouseEventStore

        store = ClickHouseEventStore(f"chdb://{data_dir / 'clickhouse'}")
    else:
        store = EventStore(data_dir / "events.duckdb")
    try:
        yield store
    finally:
        store.close()


def kept_state(store: Store, site: str) -> tuple[int, list[tuple[Any, ...]]]:
    n = read_any(store, "SELECT count(*) FROM events WHERE site_id = ?", [site])
    rollups = read_any(store, "SELECT * FROM daily_stats WHERE site_id = ? ORDER BY ALL", [site])
    return int(n[0][0]), rollups


def count_paths(store: Store, site: str, tag: str) -> int:
    row = read_any(
        store,
        "SELECT count(*) FROM events WHERE site_id = ? AND pathname LIKE ?",
        [site, f"%{tag}%"],
    )
    return int(row[0][0])


def serve(tmp_path: Path, pause: float, storage: str) -> ServeProcess:
    proc = ServeProcess(tmp_path / "data", free_port())
    proc.extra_env = {
        "AVOCET_STORAGE": storage,
        "AVOCET_RUN_JOBS": "false",
        "TEST_AVOCET_DELETION_STEP_PAUSE": str(pause),
        "AVOCET_LIMITS__COLLECT_IP_PER_MINUTE": "100000",
    }
    proc.start()
    return proc


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("what", ["delete_site", "reset_all", "reset_range"])
def test_deletion_leaves_nothing_on_disk_when_killed_mid_job_and_restarted(
    tmp_path: Path, what: str, storage: str
) -> None:
    seeded = seed(tmp_path, storage)
    data_dir = tmp_path / "data"
    # The grep can fail: the deleted site's values are in the files before.
    assert {n for _, n in grep_data_dir(data_dir, seeded.secrets)} >= {seeded.gone.encode()}
    first = serve(tmp_path, pause=2.0, storage=storage)
    auth = {"Authorization": f"Bearer {seeded.token}"}
    try:
        with httpx.Client(base_url=first.url, headers=auth, timeout=10) as http:
            before = Firehose(first.url, seeded, b"zq7-before")
            time.sleep(0.3)  # hits of both sites are flowing
            # Every "before" hit is answered before the request: one still in flight could
            # be stamped after it, and a reset rightly keeps hits that arrive after it.
            before.stop()
            fire = Firehose(first.url, seeded, b"zq7-during", net=1)
            if what == "delete_site":
                asked = http.delete(f"/api/v1/sites/{seeded.gone}")
            else:
                body = {} if what == "reset_all" else {"from": "2000-01-01", "to": str(
                    datetime.now(UTC).date() - timedelta(days=1))}  # fmt: skip
                asked = http.post(f"/api/v1/sites/{seeded.gone}/reset", json=body)
            assert asked.status_code == 202, asked.text
            rid = asked.json()["request_id"]
            mid = wait_for(http, rid, lambda b: b.get("step") is not None)
            assert (mid["status"], mid["step"]) == ("running", "events")
            time.sleep(0.3)  # hits go on arriving while the job runs
            fire.stop()  # every hit sent has its answer: the kept site's count is exact
            first.kill(signal.SIGKILL)  # between the DuckDB delete and the rest
        stored_before_kill = before.kept_stored + fire.kept_stored
        assert stored_before_kill > 0

        second = serve(tmp_path, pause=0, storage=storage)
        with httpx.Client(base_url=second.url, headers=auth, timeout=10) as http:
            fire = Firehose(second.url, seeded, b"zq7-after", net=2)
            done = wait_for(http, rid, lambda b: b["status"] in ("done", "failed"))
            time.sleep(0.3)
            fire.stop()
            assert done["status"] == "done", done
            if what == "delete_site":
                assert done["site_id"] is None
                assert http.get(f"/api/v1/sites/{seeded.gone}").status_code == 404
                listed = [s["id"] for s in http.get("/api/v1/sites").json()["sites"]]
                assert listed == [seeded.kept]
            else:
                assert http.get(f"/api/v1/sites/{seeded.gone}").status_code == 200
        second.kill(signal.SIGTERM)  # a clean stop: checkpointed
    finally:
        for proc in (first, second) if "second" in dir() else (first,):
            if proc.proc is not None:
                proc.kill()

    with stopped_store(data_dir, storage) as store:
        kept_events, kept_rollups = kept_state(store, seeded.kept)
        assert kept_rollups == seeded.kept_rollups
        assert kept_events == seeded.kept_events + stored_before_kill + fire.kept_stored
        gone = {
            "delete_site": [*seeded.secrets, b"zq7-before", b"zq7-during"],
            "reset_all": [b"zq7-secret", b"zq7-before"],  # the past days, and today's so far
            "reset_range": [b"zq7-secret"],  # the past days only
        }[what]
        if what != "delete_site":  # the site kept collecting: what arrived after the request
            # (read with SQL: an engine may compress a column so that grep can't find it)
            kept = ["zq7-during", "zq7-after", *(["zq7-before"] if what == "reset_range" else [])]
            assert all(count_paths(store, seeded.gone, tag) > 0 for tag in kept)
        for tag in [n.decode() for n in gone if n.startswith(b"zq7-")]:
            assert count_paths(store, seeded.gone, tag) == 0
    assert grep_data_dir(data_dir, gone) == []


@pytest.mark.parametrize("storage", STORAGES)
def test_site_deletion_removes_its_imported_stats(tmp_path: Path, storage: str) -> None:
    from app.jobs.privacy import run_request
    from app.services import open_stores
    from app.storage import privacy
    from tests.test_imports import FIXTURES, _env, cli, new_data_dir

    env = _env(storage)
    data = new_data_dir(tmp_path, env)
    other = cli(data, "site", "add", "other.example", "--json", env=env)
    assert other.returncode == 0, other.stderr
    for domain in ("example.com", "other.example"):
        plausible = str(FIXTURES / "plausible")
        done = cli(data, "import", "plausible", plausible, "--site", domain, env=env)
        assert done.returncode == 0, done.stderr
    tables = ("imported_stats", "import_rollups", "import_days", "imports")
    meta, store = open_stores(Settings(data_dir=str(data), storage=storage))
    try:
        site = next(s for s in meta.sites() if s.domain == "example.com")
        kept = next(s for s in meta.sites() if s.domain == "other.example")

        def counts(site_id: str) -> list[int]:
            return [
                int(read_any(store, f"SELECT count(*) FROM {t} WHERE site_id = ?", [site_id])[0][0])
                for t in tables
            ]

        before = counts(kept.id)
        # Plausible's tables are aggregates only (import_rollups/import_days: raw imports).
        assert counts(site.id) == before == [15, 0, 0, 1]
        request = privacy.create_request(meta, site.id, None, "test", kind="site")
        found = run_request(store, meta, SiteDirectory(meta), request.id)
        assert found is not None and found.status == "done", found
        assert counts(site.id) == [0, 0, 0, 0]
        assert counts(kept.id) == before  # the other site's imports are untouched
    finally:
        store.close()
        meta.close()
