"""Enrichment at ingest: page URL parts, user agent, geo, screen class."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import crawleruseragents
import iptocc
import maxminddb
import ua_parser

log = logging.getLogger("avocet.ingest")

# Click ids that decide paid channels (GA4); only the name is kept, never the value.
CLICK_IDS = (
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "msclkid",
    "fbclid",
    "ttclid",
    "twclid",
    "li_fat_id",
)
_MAX_PARAM = 500


class Page(NamedTuple):
    hostname: str
    pathname: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    ref: str | None  # ?ref= or ?source=, Plausible's shorthand for a source
    click_id: str | None


def strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


@lru_cache(maxsize=2048)  # a site's hits repeat its URLs; a parse costs 5-8 µs, a hit ~0.2
def parse_page(url: str, hash_mode: bool) -> Page | None:
    """URL -> host, path (query dropped except UTM/ref/source), or None when not an http URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "app", "android-app") or not host:
        return None
    path = unquote(parts.path) or "/"
    if hash_mode and parts.fragment:
        path = f"{path}#{unquote(parts.fragment)}"
    params: dict[str, str] = {}
    click_id = None
    if parts.query:
        for key, value in parse_qsl(parts.query):
            if key in CLICK_IDS:
                click_id = click_id or key
            elif value and key not in params:
                params[key] = value.strip()[:_MAX_PARAM]
    get = params.get
    return Page(
        hostname=strip_www(host),
        pathname=path,
        utm_source=get("utm_source"),
        utm_medium=get("utm_medium"),
        utm_campaign=get("utm_campaign"),
        utm_content=get("utm_content"),
        utm_term=get("utm_term"),
        ref=get("ref") or get("source"),
        click_id=click_id,
    )


def referrer_host(referrer: str | None) -> str | None:
    """The lowercase host of a Referer URL, or None."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer if "//" in referrer else f"//{referrer}").hostname
    except ValueError:
        return None
    return host or None


class Agent(NamedTuple):
    bot: bool
    device: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None


BOT = Agent(bot=True)
# Automation that crawler lists miss: headless browsers, scripted clients, link previewers.
_AUTOMATION = (
    "HeadlessChrome", "PhantomJS", "Puppeteer", "Playwright", "Selenium", "Cypress",
    "Lighthouse", "Chrome-Lighthouse", "Electron/", "python-requests", "curl/", "Wget",
)  # fmt: skip
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome Webview",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge": "Microsoft Edge",
    "Edge Mobile": "Microsoft Edge",
    "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Browser",
}
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}


def _version(major: str | None, minor: str | None) -> str | None:
    if not major:
        return None
    return f"{major}.{minor}" if minor else major


def _device(ua: str) -> str:
    if "iPad" in ua or "Tablet" in ua or "Kindle" in ua or "Silk/" in ua:
        return "tablet"
    if "Android" in ua and "Mobi" not in ua:
        return "tablet"
    if "Mobi" in ua or "iPhone" in ua or "iPod" in ua or "Opera Mini" in ua:
        return "mobile"
    return "desktop"


# Real user agents are < 512 characters; a parse costs ~1-2 µs per character on the event
# loop (mostly the crawler list's regexes), so a longer one is parsed as its first 512: the
# product tokens that name browser, OS and device come first. Worst case ~1 ms per distinct
# agent, and the cache holds at most size x 512 characters.
MAX_USER_AGENT = 512


def parse_agent(ua: str) -> Agent:
    """User agent -> device, browser and OS with versions; bots flagged (not cached here).
    Callers pass at most MAX_USER_AGENT characters (cached_agent_parser cuts them)."""
    if len(ua) < 8 or any(marker in ua for marker in _AUTOMATION):
        return BOT
    result = ua_parser.parse(ua)
    device = result.device
    if (device and device.family == "Spider") or crawleruseragents.is_crawler(ua):
        return BOT
    browser = result.user_agent
    system = result.os
    return Agent(
        bot=False,
        device=_device(ua),
        browser=_BROWSER_NAMES.get(browser.family, browser.family) if browser else None,
        browser_version=_version(browser.major, browser.minor) if browser else None,
        os=_OS_NAMES.get(system.family, system.family) if system else None,
        os_version=_version(system.major, system.minor) if system else None,
    )


def screen_class(width: int | None) -> str | None:
    """Plausible's screen classes by CSS pixel width."""
    if width is None or width <= 0:
        return None
    if width < 576:
        return "mobile"
    if width < 992:
        return "tablet"
    if width < 1440:
        return "laptop"
    return "desktop"


class Geo(NamedTuple):
    country: str | None = None
    region: str | None = None
    city: str | None = None


NO_GEO = Geo()


class Locator:
    """IP -> country (offline db shipped with iptocc), region and city from a .mmdb if set."""

    def __init__(self, mmdb_path: str = "") -> None:
        self._reader: maxminddb.Reader | None = None
        if mmdb_path:
            self._reader = maxminddb.open_database(str(Path(mmdb_path).expanduser()))

    def locate(self, ip: str) -> Geo:
        """Private, reserved and malformed addresses have no location (both databases say so)."""
        if self._reader is not None:
            found = self._from_mmdb(ip)
            if found.country:
                return found
        country = iptocc.country_code(ip)
        return Geo(country) if country else NO_GEO

    def _from_mmdb(self, ip: str) -> Geo:
        assert self._reader is not None
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return NO_GEO
        if not isinstance(record, dict):
            return NO_GEO
        country = (record.get("country") or {}).get("iso_code")
        if not country:
            return NO_GEO
        subdivisions = record.get("subdivisions") or []
        sub = subdivisions[0].get("iso_code") if subdivisions else None
        names = (record.get("city") or {}).get("names") or {}
        return Geo(country, f"{country}-{sub}" if sub else None, names.get("en"))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def warm_agent_parsers() -> None:
    """Build what ua-parser and crawler-user-agents build on their first call (~0.5 s of
    regex compiling), so that no visitor's hit waits for it, nor every hit behind it."""
    parse_agent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36"
    )


def cached_agent_parser(size: int) -> Callable[[str], Agent]:
    """parse_agent behind an LRU cache: real traffic repeats a few thousand user agents.
    Only the first MAX_USER_AGENT characters are parsed and kept as the cache key."""
    cached = lru_cache(maxsize=size)(parse_agent)

    def agent(ua: str) -> Agent:
        return cached(ua[:MAX_USER_AGENT])

    return agent
