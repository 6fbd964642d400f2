"""Browser fixtures: Debian's chromium driven by Playwright, and a fixture web site.

The fixture site is a second HTTP server (another port, so another origin than the app):
its pages carry the tracking snippet pointing at the live app's /script.js, exactly like
a customer's site. Chromium maps every `*.test` host to 127.0.0.1, so pages live on
http://shop.test:PORT/ (a real-looking hostname, not a local one) and outbound links can
go to http://other.test:PORT/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
# The server drops "HeadlessChrome" user agents as bots; a visitor's browser says Chrome.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    # Also the browser-wide default, not only the context's override: a keepalive request
    # sent while a page unloads (engagement on navigation) outlives the override and would
    # otherwise say "HeadlessChrome", which the server drops as a bot.
    f"--user-agent={DESKTOP_UA}",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing tool skips loudly; in CI (CI=true) it is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(f"LOUD SKIP: {reason}; run scripts/ensure-chromium (CI fails here)")


@pytest.fixture(autouse=True)
def _tracker_served(request: pytest.FixtureRequest) -> None:
    """Fails fast, and says why, when the app does not serve the tracker these tests load."""
    if "live_server" not in request.fixturenames:
        return
    if "playwright" in request.fixturenames:
        request.getfixturevalue("playwright")  # without chromium, skip before starting the app
    url = request.getfixturevalue("live_server").url + "/script.js"
    status = httpx.get(url, timeout=5).status_code
    if status != 200:
        pytest.fail(f"GET {url} answered {status}: the app must serve static/script.js")


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's chromium only: never a browser downloaded by `playwright install`.
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 720})
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class SiteServer:
    """A customer's web site: pages registered per test, served on one port for any host."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        # Where POST /proxy/collect forwards to (a site proxying the tracker via data-api).
        self.proxy_to: str | None = None
        self.proxied: list[bytes] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                resource = site.resources.get(self.path.split("?")[0])
                if resource is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", resource.content_type)
                self.send_header("Content-Length", str(len(resource.body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in resource.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(resource.body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/proxy/collect" or site.proxy_to is None:
                    self.send_error(404)
                    return
                site.proxied.append(body)
                forward = urllib.request.Request(
                    site.proxy_to,
                    data=body,
                    headers={
                        "Content-Type": self.headers.get("Content-Type", "text/plain"),
                        "User-Agent": self.headers.get("User-Agent", ""),
                        "X-Forwarded-For": self.client_address[0],
                    },
                )
                with urllib.request.urlopen(forward, timeout=5) as answer:
                    status = answer.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "shop.test") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: str | bytes, content_type: str = "", **headers: str) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.resources[path] = Resource(data, content_type or Resource.content_type, headers)
        return self.url(path)

    def reset(self) -> None:
        self.resources.clear()
        self.proxy_to = None
        self.proxied.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def site_server() -> Iterator[SiteServer]:
    server = SiteServer()
    yield server
    server.close()


@pytest.fixture
def site(site_server: SiteServer) -> Iterator[SiteServer]:
    site_server.reset()
    yield site_server
    site_server.reset()


@pytest.fixture(scope="session")
def plausible_npm_bundle() -> bytes:
    """Plausible's official npm tracker, bundled by esbuild as a customer's app would."""
    if not (ROOT / "node_modules" / "@plausible-analytics" / "tracker").exists():
        if shutil.which("npm") is None:
            skip_or_fail("npm is missing: cannot install @plausible-analytics/tracker")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    # The page sets window.AVOCET_ENDPOINT (the live app differs per test) and
    # window.__plausible, Plausible's own switch for tracking under navigator.webdriver.
    entry = """
        import { init, track } from '@plausible-analytics/tracker'
        init({ domain: 'shop.test', endpoint: window.AVOCET_ENDPOINT, captureOnLocalhost: true })
        window.npmTrack = track
    """
    result = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "esbuild"), "--bundle", "--format=iife"],
        input=entry.encode(),
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return result.stdout


# The three looks every page is judged in: (width, colour scheme).
LOOKS: list[tuple[int, str]] = [(1280, "light"), (1280, "dark"), (375, "light")]


def in_three_looks(browser: Browser) -> Iterator[tuple[int, str, Page]]:
    """A page in each of LOOKS, one new context each (closed after its turn): a test sets
    up once (on the first) and signs in again on the others."""
    for width, scheme in LOOKS:
        context = browser.new_context(
            user_agent=DESKTOP_UA,
            viewport={"width": width, "height": 900},
            is_mobile=width < 500,
            color_scheme=scheme,  # type: ignore[arg-type]
        )
        try:
            yield width, scheme, context.new_page()
        finally:
            context.close()
