"""The ingest pipeline: decoded hit -> drop or enrich -> identify -> sessionize -> row."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from app.config import Settings
from app.ingest.diagnostics import DropLog, ProxySymptom
from app.ingest.enrich import (
    Agent,
    Locator,
    Page,
    cached_agent_parser,
    parse_page,
    referrer_host,
    screen_class,
)
from app.ingest.hit import Hit
from app.ingest.identity import Sessions, day_number, user_key, user_visitor_id, visitor_id
from app.ingest.referrers import classify
from app.ingest.shields import Shields
from app.storage.events import Row
from app.storage.meta import Site
from app.storage.store import Store

log = logging.getLogger("avocet.ingest")


class Directory(Protocol):
    """The sites ingest knows: SiteDirectory (SQLite) or a collector's copy of it."""

    def by_id(self, site_id: str) -> Site | None: ...
    def by_domain(self, domain: str) -> Site | None: ...
    def shields(self, site_id: str) -> Shields | None: ...
    def all(self) -> list[Site]: ...


class SaltSource(Protocol):
    """The day's salt of a site: Salts (SQLite) or a collector's copy of the control
    plane's."""

    def get(self, site_id: str, day: date, today: date) -> bytes: ...
    def destroy_before(self, site_id: str, today: date) -> None: ...


class RowSink(Protocol):
    """Where built rows go: the group-commit Writer, or a collector's Forwarder."""

    async def write(self, row: Row) -> Drop | None: ...
    def count_bot(self, site_id: str, day: int) -> None: ...
    def count_excluded(self, site_id: str, day: int, reason: str) -> None: ...


class Drop(Enum):
    RATE_LIMITED = "rate_limited"
    UNKNOWN_SITE = "unknown_site"
    BOT = "bot"
    INVALID = "invalid"
    NO_SESSION = "no_session"
    EXCLUDED = "excluded"  # by one of the site's exclusion rules (counted per rule kind)


class Client(NamedTuple):
    """What the request says about its sender; lives for one request, never stored."""

    ip: str
    user_agent: str


class _LocalDay:
    """UTC bounds of a site's current local day, so most hits skip the zone conversion."""

    __slots__ = ("day", "end_us", "start_us", "zone")

    def __init__(self, zone: ZoneInfo, ts_us: int) -> None:
        self.zone = zone.key
        local = datetime.fromtimestamp(ts_us / 1e6, UTC).astimezone(zone)
        self.day = local.date()
        start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=zone)
        nxt = self.day + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
        self.start_us = int(start.timestamp() * 1e6)
        self.end_us = int(end.timestamp() * 1e6)


def now_us() -> int:
    return time.time_ns() // 1000


class Ingestor:
    """Turns hits into committed rows. All steps but the commit run on the event loop."""

    def __init__(
        self,
        settings: Settings,
        sites: Directory,
        salts: SaltSource,
        writer: RowSink,
        *,
        hashed_sessions: bool = False,
    ):
        self.sites = sites
        self.salts = salts
        self.writer = writer
        self._hashed = hashed_sessions  # session ids by session_hash (ClickHouse)
        self.sessions = Sessions(hashed=hashed_sessions)
        self.agent = cached_agent_parser(settings.ingest.ua_cache_size)
        self.locator = Locator(settings.geoip_db)
        self.dropped: Counter[str] = Counter()
        self.drop_log = DropLog()  # the same drops per site, for "verify installation"
        self.proxy_symptom = ProxySymptom()
        self._days: dict[str, _LocalDay] = {}
        self._today: dict[str, _LocalDay] = {}

    def restore_sessions(self, store: Store, now: int) -> None:
        """Rebuild the session table from the last 30 minutes of events."""
        since = datetime.fromtimestamp((now - 30 * 60 * 1_000_000) / 1e6, UTC).replace(tzinfo=None)
        top, recent = store.open_sessions(since, VISIT_COLUMNS)
        self.sessions = Sessions(next_id=top + 1, hashed=self._hashed)
        self.sessions.restore((r[0], r[1], r[2], r[3], tuple(r[4:])) for r in recent)

    def expire(self, now: int) -> None:
        """Forget idle sessions; destroy every site's salts of days before its yesterday."""
        for _ in self.expire_steps(now):
            pass

    def expire_steps(self, now: int) -> Iterator[None]:
        """expire() in small steps (a few thousand sessions, or one site's salts), yielding
        in between: the server's minute sweep runs on the event loop, between requests."""
        for _ in self.sessions.sweep_steps(now):
            yield
        for site in self.sites.all():
            self.salts.destroy_before(site.id, self.local_day(site, now, now=True))
            yield

    def country(self, ip: str) -> str | None:
        """The country of an address (for country exclusions; never stored)."""
        geo = self.locator.locate(ip)
        return geo[0] if geo else None

    def local_day(self, site: Site, ts_us: int, *, now: bool = False) -> date:
        """The site-local day of ts; two caches so backdated events don't evict today."""
        cache = self._today if now else self._days
        cached = cache.get(site.id)
        if (
            cached is None
            or not cached.start_us <= ts_us < cached.end_us
            or cached.zone != site.timezone  # the site's timezone changed
        ):
            cached = cache[site.id] = _LocalDay(site.zone, ts_us)
        return cached.day

    def resolve_site(self, hit: Hit) -> list[Site]:
        """The sites a hit is for: by id, or by Plausible domain (a comma-separated list)."""
        if hit.site_id:
            site = self.sites.by_id(hit.site_id)
            return [site] if site else []
        if hit.domain:
            found = (self.sites.by_domain(d) for d in hit.domain.split(",")[:10])
            return [s for s in found if s is not None]
        return []

    def build(
        self, hit: Hit, site: Site, client: Client, ts_us: int, user_id: str | None = None
    ) -> Row | Drop:
        """Everything but the commit: the row to store, or why the hit is dropped."""
        known = self.identify(hit, site, client, ts_us, user_id)
        if isinstance(known, Drop):
            return known
        page, day, agent, visitor = known
        session = self.sessions.find(site.id, visitor, ts_us)
        if session is None:
            if hit.is_engagement:
                return Drop.NO_SESSION  # a ping for a page view we never saw
            attrs = self.visit_attrs(hit, page, agent, client)
            session = self.sessions.start(site.id, visitor, ts_us, attrs)
        return self.row(hit, site, ts_us, day, visitor, session.id, page, session.attrs, user_id)

    def identify(
        self, hit: Hit, site: Site, client: Client, ts_us: int, user_id: str | None
    ) -> tuple[Page, date, Agent | None, int] | Drop:
        """The hit's page, site-local day, agent and visitor id; or why it is dropped
        (counting bots and excluded hits on the writer)."""
        page = parse_page(hit.url, hit.hash_mode)
        if page is None:
            return Drop.INVALID
        day = self.local_day(site, ts_us)
        shields = self.sites.shields(site.id)
        if shields is not None:
            reason = shields.reason(client.ip, page.hostname, page.pathname, self.country)
            if reason is not None:
                self.writer.count_excluded(site.id, day_number(day), reason)
                return Drop.EXCLUDED
        agent: Agent | None
        if user_id is None:
            agent = self.agent(client.user_agent)
            if agent.bot:
                self.writer.count_bot(site.id, day_number(day))
                return Drop.BOT
        else:
            agent = self.agent(client.user_agent) if client.user_agent else None
            if agent is not None and agent.bot:
                agent = None
        today = self.local_day(site, now_us(), now=True)
        salt = self.salts.get(site.id, day, today)
        visitor = (
            visitor_id(salt, site.id, client.ip, client.user_agent)
            if user_id is None
            else user_visitor_id(salt, site.id, user_id)
        )
        return page, day, agent, visitor

    def visit_attrs(
        self, hit: Hit, page: Page, agent: Agent | None, client: Client
    ) -> tuple[Any, ...]:
        """What a visit that starts with this hit is credited to (VISIT_COLUMNS' values)."""
        source = classify(
            referrer_host(hit.referrer),
            page.hostname,
            page.utm_source,
            page.utm_medium,
            page.utm_campaign,
            page.ref,
            page.click_id,
        )
        geo = self.locator.locate(client.ip) if client.ip else None
        return (
            page.pathname,
            source.referrer,
            source.source,
            source.channel,
            page.utm_source,
            page.utm_medium,
            page.utm_campaign,
            page.utm_content,
            page.utm_term,
            *(agent[1:] if agent else (None,) * 5),
            screen_class(hit.screen_width),
            *(geo if geo else (None, None, None)),
        )

    @staticmethod
    def row(
        hit: Hit,
        site: Site,
        ts_us: int,
        day: date,
        visitor: int,
        session_id: int,
        page: Page,
        attrs: tuple[Any, ...],
        user_id: str | None,
    ) -> Row:
        """The stored row (EVENT_SCHEMA's order)."""
        engagement = hit.is_engagement
        return (
            site.id,
            ts_us,
            day_number(day),
            hit.name,
            visitor,
            session_id,
            page.hostname,
            page.pathname,
            *attrs,
            list(hit.props) if hit.props else None,
            hit.revenue[0] if hit.revenue else None,
            hit.revenue[1] if hit.revenue else None,
            hit.interactive,
            hit.engagement_ms if engagement else None,
            hit.scroll_depth if engagement else None,
            user_key(site.secret, user_id) if user_id is not None else None,
        )

    async def record(
        self,
        hit: Hit,
        client: Client,
        ts_us: int | None = None,
        admit: Callable[[str], bool] | None = None,
    ) -> list[Drop]:
        """Store the hit for each site it names; returns the drops (empty = all stored).
        `admit(site_id)` is the caller's per-site rate limit."""
        ts = now_us() if ts_us is None else ts_us
        sites = self.resolve_site(hit)
        if not sites:
            self.dropped[Drop.UNKNOWN_SITE.value] += 1
            # Shown to the site whose domain the page is on: a typo in its snippet.
            owner = self.sites.by_domain(referrer_host(hit.url) or "") if hit.url else None
            if owner is not None:
                self.drop_log.count(owner.id, Drop.UNKNOWN_SITE.value)
            return [Drop.UNKNOWN_SITE]
        drops = []
        writes = []
        written: list[str] = []
        for site in sites:
            row = (
                self.build(hit, site, client, ts)
                if admit is None or admit(site.id)
                else Drop.RATE_LIMITED
            )
            if isinstance(row, Drop):
                self.dropped[row.value] += 1
                self.drop_log.count(site.id, row.value)
                drops.append(row)
            else:
                writes.append(self.writer.write(row))
                written.append(site.id)
        if len(writes) == 1:
            late = [await writes[0]]
        elif writes:
            late = await asyncio.gather(*writes)
        else:
            return drops
        for site_id, drop in zip(written, late, strict=True):
            if drop is not None:  # decided by the session owner (a collector's forward)
                self.dropped[drop.value] += 1
                self.drop_log.count(site_id, drop.value)
                drops.append(drop)
        return drops


# Visit attributes, in row order after pathname: copied from a session's first event.
VISIT_COLUMNS = (
    "entry_page",
    "referrer",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "device",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "screen",
    "country",
    "region",
    "city",
)
