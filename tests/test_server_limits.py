"""What one connection may cost the server (issue #17, items 3 and 4), over real sockets
against the served app: header bytes, user-agent parsing, idle, header and body time, and
connections open at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from msgspec.structs import replace

from app.config import ServerSettings, Settings
from tests.conftest import CHROME_UA, LiveServer, start_live_server, stop_live_server

FAST = ServerSettings(header_timeout_seconds=0.5, body_timeout_seconds=0.5, keep_alive_seconds=0.5)


def connect(live: LiveServer) -> socket.socket:
    return socket.create_connection((live.settings.host, live.settings.port), timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took
    (`limit` seconds at most: the socket's timeout then fails the test)."""
    started = time.monotonic()
    sock.settimeout(limit)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - started


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def request_bytes(path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    method = "POST" if body else "GET"
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture
def fast_server(settings: Settings) -> Iterator[LiveServer]:
    live = start_live_server(replace(settings, server=FAST))
    try:
        yield live
    finally:
        stop_live_server(live)


def test_health_stays_fast_when_two_megabyte_user_agents_arrive(live_server: LiveServer) -> None:
    site = live_server.add_site("example.com")
    body = f'{{"n":"pageview","u":"https://example.com/","s":"{site}"}}'.encode()
    stop = threading.Event()
    answers: list[bytes] = []

    def attack(attacker: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1  # a new agent each time, as an attacker would send: no cache helps
            agent = f"Mozilla/5.0 ({attacker} {sent}) "
            huge = request_bytes("/collect", {"User-Agent": agent + "a" * 2_000_000}, body)
            # Just under the header limit: reaches the app, whose parse sees 512 characters.
            long = request_bytes("/collect", {"User-Agent": CHROME_UA + agent * 600}, body)
            for raw in (huge, long):
                with connect(live_server) as sock:
                    # The server may refuse before the whole header is sent.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        sock.sendall(raw)
                    answers.append(read_until_closed(sock)[0][:12])

    attackers = [threading.Thread(target=attack, args=(n,)) for n in range(2)]
    for thread in attackers:
        thread.start()
    slowest = 0.0
    try:
        with httpx.Client(base_url=live_server.url) as http:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                started = time.monotonic()
                assert http.get("/api/health").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    assert slowest < 0.3  # the old server stalled 2-3 s on each new 2 MB user agent
    assert b"HTTP/1.1 431" in answers and b"HTTP/1.1 204" in answers
    assert {a for a in answers if a} <= {b"HTTP/1.1 431", b"HTTP/1.1 204"}
    [row] = live_server.wait_rows("SELECT browser, os FROM events LIMIT 1", None, 1)
    assert row == {"browser": "Chrome", "os": "macOS"}


def test_user_agents_are_parsed_as_their_first_512_characters(live_server: LiveServer) -> None:
    """A long agent counts as its browser (its first 512 characters are parsed); a crawler
    token past them goes unseen (real crawlers' agents are < 300 characters)."""
    site = live_server.add_site("example.com")
    padding = " " + "x" * (512 - len(CHROME_UA))
    hit = {"n": "pageview", "u": "https://example.com/", "s": site}
    with live_server.client() as http:
        for ua in (CHROME_UA + padding + " Googlebot/2.1", "Googlebot/2.1 " + padding):
            assert http.post("/collect", json=hit, headers={"User-Agent": ua}).status_code == 204
    rows = live_server.wait_rows("SELECT browser, device FROM events", None, 1)
    assert rows == [{"browser": "Chrome", "device": "desktop"}]
    assert live_server.services.ingest.dropped["bot"] == 1


@pytest.mark.parametrize(("size", "status"), [(16 * 1024, 200), (16 * 1024 + 1, 431)])
def test_request_headers_over_the_limit_get_431(
    live_server: LiveServer, size: int, status: int
) -> None:
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    # The limit counts the request target and each header as name + value + 4 bytes.
    counted = len("/api/health") + len("host127.0.0.1") + 4 + len("connectionclose") + 4
    filler = b"X-Filler: " + b"f" * (size - counted - len("x-filler") - 4) + b"\r\n"
    with connect(live_server) as sock:
        sock.sendall(head + filler + b"\r\n")
        response, _ = read_until_closed(sock)
    assert status_of(response) == status


def test_a_silent_connection_is_closed_after_the_header_timeout(
    fast_server: LiveServer,
) -> None:
    with connect(fast_server) as sock:
        response, waited = read_until_closed(sock)
    assert response == b""
    assert 0.4 < waited < 2.0


def test_slow_drip_headers_get_408(fast_server: LiveServer) -> None:
    with connect(fast_server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        try:
            while time.monotonic() - started < 5:
                sock.sendall(b"a")  # one byte every 50 ms: never idle, never done
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response, _ = read_until_closed(sock)
        waited = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408 ")
    assert waited < 2.0


@pytest.mark.parametrize(
    ("path", "status"),
    # /api/v1/events answers 401 before reading a body: the late body then just closes it.
    [("/collect", b"408"), ("/api/event", b"408"), ("/api/v1/events", b"401")],
)
def test_a_body_that_never_completes_gets_408(
    fast_server: LiveServer, path: str, status: bytes
) -> None:
    with connect(fast_server) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
        sock.sendall(head.encode() + b'{"n":"pageview",')
        response, waited = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 " + status + b" ")
    assert response.count(b"HTTP/1.1") == 1
    assert 0.4 < waited < 2.0
    with httpx.Client(base_url=fast_server.url) as http:
        assert http.get("/api/health").status_code == 200


def test_an_idle_kept_alive_connection_is_closed(fast_server: LiveServer) -> None:
    with connect(fast_server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response, waited = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert 0.4 < waited < 2.0


def test_connections_over_the_limit_get_503_until_idle_ones_time_out(
    settings: Settings,
) -> None:
    live = start_live_server(replace(settings, server=replace(FAST, max_connections=20)))
    try:
        idle = [connect(live) for _ in range(20)]
        time.sleep(0.1)  # let the server accept them all
        with connect(live) as extra:
            response, waited = read_until_closed(extra)
        assert status_of(response) == 503
        assert waited < 0.3
        for sock in idle:  # the header timeout frees their places
            assert read_until_closed(sock)[0] == b""
            sock.close()
        with httpx.Client(base_url=live.url) as http:
            assert http.get("/api/health").status_code == 200
    finally:
        stop_live_server(live)
