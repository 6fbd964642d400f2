"""Many collectors (issue #24): `avocet serve` as the control plane on ClickHouse (chdb),
2 sessionizers and 4 collectors, each a real process on loopback. One visitor's hits
spread over the collectors form one visit; a sessionizer killed with -9 and restarted
picks its open visits up again; every node used the control plane's salt; every hit a
collector acknowledged is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import load_settings
from app.ingest import wire
from app.ingest.collector import ControlPlane, RemoteSalts
from app.ingest.identity import session_hash
from app.ingest.sessionizer import own_position
from tests.conftest import CHROME_UA, ROOT, ServeProcess, free_port

pytest.importorskip("chdb")  # `make test` installs it: never skipped there

SECRET = "s3cret-" + "x" * 40
COLLECTORS = 4
SESSIONIZERS = 2
BOTS = 7
OWNER, PASSWORD = "owner@example.com", "a long enough password"


@dataclass
class Node:
    role: str
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", self.role, "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"{self.role} exited"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.role} on {self.port} did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
            self.proc = None


@dataclass
class Cluster:
    control: ServeProcess
    site: str
    sessionizers: list[Node]
    collectors: list[Node]
    acked: list[str] = field(default_factory=list)  # paths whose hit a collector answered
    restarted: dict[str, Any] = field(default_factory=dict)  # its /api/health on return


@dataclass(frozen=True)
class Visitor:
    ip: str
    pages: tuple[str, ...]


# 90 visitors: 1, 2, 3 or 4 pageviews each (so a share bounces), each on its own IP.
VISITORS = [
    Visitor(f"10.20.{n // 200}.{n % 200 + 1}", tuple(f"/v{n}/p{i}" for i in range(1 + n % 4)))
    for n in range(90)
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    control = ServeProcess(root / "control", free_port())
    common = {
        "AVOCET_STORAGE": "clickhouse",
        "AVOCET_CLUSTER__SECRET": SECRET,
        "AVOCET_LOG_LEVEL": "warning",
    }
    control.extra_env.update({**common, "AVOCET_RUN_JOBS": "false",
                              "AVOCET_OPEN_STATS_ON_LOOPBACK": "true"})  # fmt: skip
    added = control.cli("site", "add", "example.com", "--json")
    assert added.returncode == 0, added.stderr
    site = json.loads(added.stdout)["id"]
    owner = subprocess.run(  # the first user: the site's owner, for its verify page
        [sys.executable, "-m", "app.cli", "--data-dir", str(control.data_dir), "user",
         "create", OWNER, "--password-stdin"],
        input=PASSWORD, capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, **control.extra_env}, check=False,
    )  # fmt: skip
    assert owner.returncode == 0, owner.stderr
    control.start()
    ports = [free_port() for _ in range(SESSIONIZERS + COLLECTORS)]
    env = {
        **os.environ,
        **common,
        "AVOCET_DATA_DIR": str(root / "node"),  # nodes keep nothing; a folder of its own
        "AVOCET_CLUSTER__CONTROL_URL": control.url,
        "AVOCET_CLUSTER__SESSIONIZERS": ",".join(
            f"http://127.0.0.1:{p}" for p in ports[:SESSIONIZERS]
        ),
    }
    sessionizers = [Node("sessionizer", p, env) for p in ports[:SESSIONIZERS]]
    collectors = [Node("collector", p, env) for p in ports[SESSIONIZERS:]]
    nodes = sessionizers + collectors
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait()
        yield Cluster(control, site, sessionizers, collectors)
    finally:
        for node in nodes:
            node.stop(signal.SIGKILL)
        if control.proc is not None:
            control.kill(signal.SIGTERM)


async def send(cluster: Cluster, pages: slice) -> None:
    """Each visitor's pageviews `pages`, in order, hit n going to collector (visitor + n):
    a visit's hits spread over every collector."""

    async def visit(n: int, visitor: Visitor, http: httpx.AsyncClient) -> None:
        for i, path in list(enumerate(visitor.pages))[pages]:
            collector = cluster.collectors[(n + i) % COLLECTORS]
            body = {"n": "pageview", "u": f"https://example.com{path}", "s": cluster.site}
            r = await http.post(
                f"{collector.url}/collect",
                content=json.dumps(body),
                headers={"X-Forwarded-For": visitor.ip},
            )
            assert r.status_code == 204
            cluster.acked.append(path)

    async with httpx.AsyncClient(headers={"User-Agent": CHROME_UA}, timeout=30) as http:
        await asyncio.gather(*(visit(n, v, http) for n, v in enumerate(VISITORS)))


def stats(cluster: Cluster, endpoint: str, **params: str) -> dict[str, Any]:
    r = httpx.get(
        f"{cluster.control.url}/api/v1/stats/{endpoint}",
        params={"site_id": cluster.site, "period": "today", **params},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def traffic(cluster: Cluster) -> Cluster:
    """The module's hits, sent once, whatever test asks first."""
    asyncio.run(send(cluster, slice(0, 2)))  # first two pageviews of every visitor
    # A sessionizer dies with its visits open, and comes back: it reloads them from the
    # store (through the control plane), so the next pageviews continue the same visits.
    victim = cluster.sessionizers[1]
    victim.stop(signal.SIGKILL)
    victim.start()
    victim.wait()
    cluster.restarted = httpx.get(f"{victim.url}/api/health", timeout=10).json()
    asyncio.run(send(cluster, slice(2, None)))
    # Bots are dropped by the collectors and counted; an engagement ping of a visit no
    # sessionizer knows is dropped by its owner.
    with httpx.Client(timeout=30) as http:
        for i in range(BOTS):
            r = http.post(
                f"{cluster.collectors[i % COLLECTORS].url}/collect",
                content=json.dumps({"n": "pageview", "u": "https://example.com/bot",
                                    "s": cluster.site}),
                headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)",
                         "X-Forwarded-For": f"10.99.0.{i + 1}"},
            )  # fmt: skip
            assert r.status_code == 204
        r = http.post(
            f"{cluster.collectors[0].url}/api/event",
            json={"name": "engagement", "url": "https://example.com/x", "domain": "example.com"},
            headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "10.98.0.1"},
        )
        assert (r.status_code, r.headers.get("x-plausible-dropped")) == (202, "1")
    # Bot counts ride with the next commit and no answer waits for them: wait until every
    # stats answer counts them (meta.filtered_bot_traffic).
    deadline = time.monotonic() + 15
    while True:
        bots = stats(cluster, "aggregate", metrics="visitors")["meta"]["filtered_bot_traffic"]
        if bots == BOTS or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert bots == BOTS
    return cluster


def test_one_visit_per_visitor_across_collectors_and_a_sessionizer_restart(
    traffic: Cluster,
) -> None:
    cluster = traffic
    pageviews = sum(len(v.pages) for v in VISITORS)
    bounces = sum(len(v.pages) == 1 for v in VISITORS)
    aggregate = stats(cluster, "aggregate", metrics="visitors,visits,pageviews,bounce_rate")
    assert aggregate["metrics"] == {
        "visitors": len(VISITORS),
        "visits": len(VISITORS),
        "pageviews": pageviews,
        "bounce_rate": round(100 * bounces / len(VISITORS), 1),
    }
    entries = stats(cluster, "breakdown", property="entry_page", metrics="visits",
                    limit="1000")["results"]  # fmt: skip
    assert sorted((r["value"], r["visits"]) for r in entries) == sorted(
        (v.pages[0], 1) for v in VISITORS
    )
    exits = stats(cluster, "breakdown", property="exit_page", metrics="visits",
                  limit="1000")["results"]  # fmt: skip
    assert sorted((r["value"], r["visits"]) for r in exits) == sorted(
        (v.pages[-1], 1) for v in VISITORS
    )


def test_a_restarted_sessionizer_restores_only_the_visitors_it_owns(traffic: Cluster) -> None:
    """It finds itself in [cluster] sessionizers (127.0.0.1 and its port: the second) and
    takes, of the open visits the control plane offers, only those of the visitors the
    collectors send it (owner_of). Every visitor still has one open visit (the visits
    continued after the restart), so the offer now is what it was offered then."""
    health = traffic.restarted
    assert health["position"] == 1
    since = int((time.time() - 25 * 60) * 1_000_000)
    offered = httpx.get(
        f"{traffic.control.url}{wire.PREFIX}/open-sessions",
        params={"since": since},
        headers=wire.bearer(SECRET),
        timeout=30,
    )
    assert offered.status_code == 200
    rows = wire.open_sessions_decoder.decode(offered.content)
    assert len(rows) == len(VISITORS)
    owned = sum(wire.owner_of(r[0], r[1], SESSIONIZERS) == 1 for r in rows)
    assert 0 < owned < len(VISITORS)
    assert health["open_sessions"] == owned


@pytest.mark.parametrize(
    ("sessionizers", "port", "position"),
    [
        ("http://192.0.2.10:8100,http://127.0.0.1:8100", 8100, 1),  # the local one
        ("http://127.0.0.1:8101,http://127.0.0.1:8102", 8102, 1),  # one host, by port
        ("http://localhost:8100,http://192.0.2.11:8100", 8100, 0),  # a name, resolved
        ("http://192.0.2.10:8100,http://192.0.2.11:8100", 8100, None),  # not this machine
        ("http://127.0.0.1:8100,http://localhost:8100", 8100, None),  # two match
        ("https://127.0.0.1,http://192.0.2.11:8100", 443, 0),  # a scheme's own port
    ],
)
def test_a_sessionizer_finds_itself_in_the_list(
    sessionizers: str, port: int, position: int | None
) -> None:
    """192.0.2.0/24 is TEST-NET-1: never an address of this machine."""
    settings = load_settings(
        None,
        {
            "AVOCET_PORT": str(port),
            "AVOCET_CLUSTER__SECRET": SECRET,
            "AVOCET_CLUSTER__CONTROL_URL": "http://127.0.0.1:8000",
            "AVOCET_CLUSTER__SESSIONIZERS": sessionizers,
        },
    )
    assert own_position(settings) == position


def test_every_node_used_the_control_planes_salt(traffic: Cluster) -> None:
    cluster = traffic
    auth = wire.bearer(SECRET)
    today = datetime.now(UTC).date()  # the site is on UTC
    salt = httpx.get(
        f"{cluster.control.url}{wire.PREFIX}/salt/{cluster.site}/{today}", headers=auth
    )
    assert salt.status_code == 200
    held = []
    for collector in cluster.collectors:
        state = httpx.get(f"{collector.url}{wire.PREFIX}/state", headers=auth).json()
        held.append(state["salts"])
    expected = {"site_id": cluster.site, "day": today.isoformat(),
                "fingerprint": wire.fingerprint(salt.content)}  # fmt: skip
    assert held == [[expected]] * COLLECTORS


def test_the_internal_api_wants_the_secret(cluster: Cluster) -> None:
    today = datetime.now(UTC).date()
    for url in (
        f"{cluster.control.url}{wire.PREFIX}/salt/{cluster.site}/{today}",
        f"{cluster.control.url}{wire.PREFIX}/sites",
        f"{cluster.collectors[0].url}{wire.PREFIX}/state",
    ):
        for headers in ({}, {"authorization": "Bearer " + "y" * 47}):
            r = httpx.get(url, headers=headers)
            assert r.status_code == 401, (url, r.status_code)
            assert r.json()["error"]["code"] == "unauthorized"
    bad = httpx.post(
        f"{cluster.sessionizers[0].url}{wire.PREFIX}/hits", content=b"\x93", headers={}
    )
    assert bad.status_code == 401
    garbage = httpx.post(
        f"{cluster.sessionizers[0].url}{wire.PREFIX}/hits",
        content=b"not msgpack",
        headers=wire.bearer(SECRET),
    )
    assert garbage.status_code == 400, garbage.text


def test_salts_are_gone_a_day_after_their_day(cluster: Cluster) -> None:
    """A collector's copy of the salts, against the real control plane: yesterday's and
    today's come over; each goes once its day is older than yesterday."""
    variables = {
        "AVOCET_CLUSTER__SECRET": SECRET,
        "AVOCET_CLUSTER__CONTROL_URL": cluster.control.url,
    }
    settings = load_settings(None, variables)
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)

    async def scenario() -> list[list[str]]:
        async with httpx.AsyncClient() as client:
            salts = RemoteSalts(ControlPlane(settings, client))
            await salts.fetch(cluster.site, yesterday)
            await salts.fetch(cluster.site, today)
            seen = [[h["day"] for h in salts.held()]]
            salts.destroy_before(cluster.site, today + timedelta(days=1))
            seen.append([h["day"] for h in salts.held()])
            salts.destroy_before(cluster.site, today + timedelta(days=2))
            seen.append([h["day"] for h in salts.held()])
            # A day before yesterday never comes over: a throw-away salt of this process.
            old = today - timedelta(days=3)
            assert salts.has(cluster.site, old, today)
            throwaway = salts.get(cluster.site, old, today)
            assert throwaway == salts.get(cluster.site, old, today)
            assert salts.held() == []
            return seen

    assert asyncio.run(scenario()) == [
        [yesterday.isoformat(), today.isoformat()],
        [today.isoformat()],
        [],
    ]


def test_every_acknowledged_hit_is_stored_once_with_stable_session_ids(traffic: Cluster) -> None:
    """The store read directly: the control plane stops for it (chdb is one process's),
    then comes back, and the nodes carry on with it."""
    cluster = traffic
    cluster.control.kill(signal.SIGTERM)
    from app.storage.clickhouse.store import ClickHouseEventStore

    store = ClickHouseEventStore(f"chdb://{cluster.control.data_dir / 'clickhouse'}")
    try:
        rows = store.query(
            "SELECT pathname, visitor_id, session_id, toUnixTimestamp64Micro(ts) FROM events"
            " ORDER BY ts"
        )
        bots = store.query("SELECT sum(hits) FROM bot_counts")
    finally:
        store.close()
        cluster.control.start()
    stored = Counter(r[0] for r in rows)
    assert len(cluster.acked) == sum(len(v.pages) for v in VISITORS)
    assert [p for p in cluster.acked if stored[p] != 1] == []
    assert sum(stored.values()) == len(cluster.acked)
    assert int(bots[0][0]) == BOTS
    # One session per visitor, its id the hash of (site, visitor, first event's time).
    first: dict[int, tuple[int, int]] = {}
    for _, visitor, session, ts in rows:
        first.setdefault(visitor, (session, ts))
        assert session == first[visitor][0]
    assert len(first) == len(VISITORS)
    assert all(s == session_hash(cluster.site, v, ts) for v, (s, ts) in first.items())


def test_a_clickhouse_writer_spaces_its_inserts(tmp_path: Path) -> None:
    """[clickhouse] insert_interval_ms: rows arriving while the interval runs wait for one
    insert together (a part each for ClickHouse to merge, so a few per second)."""
    from app.ingest.writer import Writer
    from app.storage.clickhouse.store import ClickHouseEventStore

    store = ClickHouseEventStore(f"chdb://{tmp_path / 'ch'}")
    row = ("site", 1_700_000_000_000_000, 19675, "pageview", 1, 1, "h", "/") + (None,) * 18
    row += (None, None, None, True, None, None, None)

    async def scenario() -> tuple[int, int]:
        writer = Writer(store, min_interval=0.5)
        writer.start()
        await writer.write(row)  # the first insert goes at once
        # Then one row every 20 ms for 200 ms: back to back, as on DuckDB, that would be
        # an insert for nearly every row; here they all wait for the second insert.
        waiting = []
        for _ in range(10):
            waiting.append(asyncio.ensure_future(writer.write(row)))
            await asyncio.sleep(0.02)
        await asyncio.gather(*waiting)
        await writer.stop()
        return writer.commits, writer.committed_rows

    try:
        assert asyncio.run(scenario()) == (2, 11)
        assert store.query("SELECT count() FROM events")[0][0] == 11
    finally:
        store.close()


def test_the_verify_page_counts_what_every_collector_dropped(traffic: Cluster) -> None:
    """Hits every collector dropped reach the control plane's "verify installation" (each
    collector hands its counts over every few seconds): a snippet with a mistyped site id
    on example.com's pages, sent once to each collector, shows there as 4 such drops.
    (Counted here, after the other tests: the control plane's counts are in memory, and a
    test above restarts it.)"""
    cluster = traffic
    with httpx.Client(timeout=30) as http:
        for collector in cluster.collectors:
            r = http.post(
                f"{collector.url}/collect",
                content=json.dumps({"n": "pageview", "u": "https://example.com/typo",
                                    "s": "no-such-site"}),
                headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "10.97.0.1"},
            )  # fmt: skip
            assert r.status_code == 204
    with httpx.Client(base_url=cluster.control.url, timeout=30) as ui:
        form = ui.get("/ui/login").text
        token = re.search(r'name="csrf_token" value="([^"]*)"', form)
        assert token
        signed = ui.post("/ui/login", data={"csrf_token": token.group(1), "email": OWNER,
                                            "password": PASSWORD})  # fmt: skip
        assert signed.status_code == 303, signed.text
        deadline = time.monotonic() + 30  # DROPS_SECONDS, and a margin
        while True:
            recent = ui.get(f"/ui/sites/{cluster.site}/recent")
            assert recent.status_code == 200, recent.text
            dropped = {d["reason"]: d["count"] for d in recent.json()["dropped"]}
            if dropped.get("unknown_site") == COLLECTORS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert dropped["unknown_site"] == COLLECTORS
