"""kill -9 in the middle of a stream of events: every acknowledged event survives, once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter

import duckdb
import httpx
import pytest

from tests.conftest import CHROME_UA, ServeProcess
from tests.stats_env import STORAGES

WORKERS = 32
ACKED_BEFORE_KILL = 300  # then kill -9 mid-stream (a count, not a time: fsync speed varies)


async def fire(url: str, site: str, acked: list[str], give_up_at: float) -> None:
    """Many concurrent clients, each posting unique paths until the server dies."""
    counter = iter(range(10**9))

    async def worker(n: int, http: httpx.AsyncClient) -> None:
        while time.monotonic() < give_up_at:
            i = next(counter)
            path = f"/crash/{i}"
            ip = f"10.{n}.{i % 250}.{i % 200 + 1}"
            try:
                if i % 2:
                    body = {"n": "pageview", "u": f"https://example.com{path}", "s": site}
                    r = await http.post(
                        "/collect", content=json.dumps(body), headers={"X-Forwarded-For": ip}
                    )
                    ok = r.status_code == 204
                else:
                    body = {
                        "name": "pageview",
                        "url": f"https://example.com{path}",
                        "domain": "example.com",
                    }
                    r = await http.post("/api/event", json=body, headers={"X-Forwarded-For": ip})
                    ok = r.status_code == 202
            except httpx.TransportError:
                return  # the server is gone: this request was never acknowledged
            if ok:
                acked.append(path)

    async with httpx.AsyncClient(
        base_url=url,
        headers={"User-Agent": CHROME_UA},
        timeout=5,
        limits=httpx.Limits(max_connections=WORKERS),
    ) as http:
        await asyncio.gather(*(worker(n, http) for n in range(WORKERS)))


def stored_paths(serve: ServeProcess, storage: str) -> Counter[str]:
    if storage == "clickhouse":
        from app.storage.clickhouse.store import ClickHouseEventStore

        store = ClickHouseEventStore(f"chdb://{serve.data_dir / 'clickhouse'}")
        try:
            return Counter(r[0] for r in store.query("SELECT pathname FROM events"))
        finally:
            store.close()
    con = duckdb.connect(str(serve.data_dir / "events.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT pathname FROM events").fetchall()
    finally:
        con.close()
    return Counter(r[0] for r in rows)


@pytest.mark.parametrize("storage", STORAGES)
def test_every_acknowledged_event_is_stored_exactly_once_after_kill_9(
    serve_process: ServeProcess, storage: str
) -> None:
    serve_process.extra_env["AVOCET_STORAGE"] = storage
    added = serve_process.cli("site", "add", "example.com", "--json")
    assert added.returncode == 0, added.stderr
    site = json.loads(added.stdout)["id"]
    serve_process.start()

    acked: list[str] = []
    give_up_at = time.monotonic() + 60

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        firing = asyncio.create_task(fire(serve_process.url, site, acked, give_up_at))
        while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < give_up_at:
            await asyncio.sleep(0.01)
        await loop.run_in_executor(None, serve_process.kill, signal.SIGKILL)
        await firing

    asyncio.run(scenario())
    assert len(acked) >= ACKED_BEFORE_KILL, "the server should have acknowledged a real stream"

    serve_process.start()  # recovery replays DuckDB's WAL (ClickHouse: its parts are whole)
    serve_process.kill(signal.SIGTERM)  # a clean stop, so this process can open the store
    stored = stored_paths(serve_process, storage)

    assert [p for p in acked if stored[p] != 1] == []
    assert [p for p, n in stored.items() if n > 1] == []
    assert len(set(acked)) == len(acked)
