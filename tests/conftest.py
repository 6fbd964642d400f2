"""Fixtures that run the real app on real files: in-process over HTTP, or as a subprocess."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from msgspec.structs import replace

from app.cli import server_config
from app.config import Settings
from app.main import create_app
from app.services import Services
from app.storage.store import Store

CHROME_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ROOT = Path(__file__).resolve().parent.parent


# Ports for the tests' servers: below Linux's ephemeral range (32768-60999), which the
# kernel hands to every client socket and to bind(0), so nothing else takes one between
# free_port() and the server's bind; a block of 2,000 for each xdist worker (gw0-gw5),
# taken in turn and round again (a stopped server's port is free once more).
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_BLOCK = range(20_000 + 2_000 * _WORKER, 22_000 + 2_000 * _WORKER)
_PORTS = itertools.cycle(_BLOCK)


def free_port() -> int:
    """A loopback port that no other test process uses and nothing listens on."""
    for _, port in zip(_BLOCK, _PORTS, strict=False):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("every port of this worker's block is in use")


@dataclass
class LiveServer:
    """The real app served by uvicorn in a thread of the test process, so tests can read
    the same DuckDB the server writes (a second process could not open the file)."""

    url: str
    settings: Settings
    services: Services
    _server: uvicorn.Server = field(repr=False)

    def add_site(self, domain: str, timezone: str = "UTC") -> str:
        return self.services.meta.add_site(domain, timezone=timezone).id

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """A read in DuckDB's SQL, on either store (tests' reads are simple enough for
        clickhouse_sql to translate)."""
        if self.services.events.engine == "clickhouse":
            sql = clickhouse_sql(sql, params or [])
        return self.services.events.query_dicts(sql, params or [])

    def wait_rows(
        self, sql: str, params: list[Any] | None, count: int, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.rows(sql, params)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"User-Agent": CHROME_UA, **headers})


def start_live_server(settings: Settings) -> LiveServer:
    app = create_app(settings)
    server = uvicorn.Server(server_config(replace(settings, log_level="warning"), app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    server_thread[server] = thread
    return LiveServer(
        f"http://{settings.host}:{settings.port}", settings, app.state.services, server
    )


server_thread: dict[uvicorn.Server, threading.Thread] = {}


def stop_live_server(live: LiveServer) -> None:
    live._server.should_exit = True
    server_thread.pop(live._server).join(timeout=20)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Jobs off: a test decides when rollups run (a scheduled one would change answers' paths).
    return Settings(
        data_dir=str(tmp_path / "data"), host="127.0.0.1", port=free_port(), run_jobs=False
    )


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    live = start_live_server(settings)
    try:
        yield live
    finally:
        stop_live_server(live)


def clickhouse_sql(sql: str, params: list[Any]) -> str:
    """A test's simple DuckDB read in ClickHouse's SQL: `?` as typed named parameters,
    EXCLUDE as EXCEPT, rollup rows from each day's current build."""
    from app.query.dialect import clickhouse_type

    parts = sql.split("?")
    assert len(parts) == len(params) + 1, (sql, params)
    text = parts[0]
    for i, (value, rest) in enumerate(zip(params, parts[1:], strict=True)):
        text += f"{{p{i}:{clickhouse_type(value)}}}{rest}"
    text = text.replace("* EXCLUDE (", "* EXCEPT (")
    return text.replace("FROM rollup_days", "FROM rollup_days FINAL")


def read_any(store: Store, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """A test's read in DuckDB's SQL on either events store (see clickhouse_sql)."""
    if store.engine == "clickhouse":
        sql = clickhouse_sql(sql, params or [])
    return store.query(sql, params or [])


@dataclass
class ServeProcess:
    """`avocet serve` as a real subprocess (for crash tests: it can be killed with -9)."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, **self.extra_env},
            check=False,
        )

    def start(self) -> None:
        variables = {**os.environ, **self.extra_env, "AVOCET_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "--data-dir",
                str(self.data_dir),
                "serve",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=variables,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("avocet serve did not come up")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path / "data", free_port())
    try:
        yield proc
    finally:
        if proc.proc is not None:
            proc.kill()


# The stats tests' module-scoped dataset server (defined beside its helpers).
from tests.stats_env import env  # noqa: E402, F401
