"""Umami (v2 and v3): its tables' rows as CSV files, one file per table with a header row
(what `\\copy website_event TO 'website_event.csv' CSV HEADER` writes, what `avocet import
umami --from-db` dumps, and Umami Cloud's data export, whose event rows carry their
session's columns too). A file is recognised by its header, whatever its name.

Columns, from Umami's schema (umami-software/umami prisma/schema.prisma, and for v2
db/postgresql/schema.prisma, their migrations under prisma/migrations/ and
db/postgresql/migrations/):
- website_event: event_id, website_id, session_id, visit_id (v2.10+), created_at,
  url_path, url_query, referrer_domain, referrer_path, referrer_query, event_type
  (1 pageview, 2 custom event, 3 link, 4 pixel, 5 performance: src/lib/constants.ts
  EVENT_TYPE), event_name, hostname (v3; v2 keeps it on the session), utm_* (v3; v2 has
  them in url_query only).
- session: session_id, browser (detect-browser's names: chrome, ios, crios...), os
  ("Windows 10", "Mac OS"), device (desktop, laptop, mobile, tablet), screen ("1920x1080"),
  country, region (v3) or subdivision1 (v2), city, hostname (v2).
- event_data: website_event_id, data_key, string_value, number_value, date_value,
  data_type (1 string, 2 number, 3 boolean, 4 date, 5 array): a custom event's props.
- revenue (v3): event_id, currency, revenue. Before v3 revenue was event data under the
  keys revenue and currency (db/postgresql/data-migrations/populate-revenue-table.sql
  moves exactly those into the revenue table); both are read.

Umami's session (a visitor of one website, its id a hash of IP, user agent and a monthly
salt) is our visitor; its visit_id is our visit (exports without it: visits end after 30
idle minutes). Umami's ids are hashed with the import's key and never stored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, urlencode

from app.imports.build import Record
from app.imports.csvfiles import CsvRow, display_name, parse_time_us, read_csv
from app.imports.errors import ImportInvalid
from app.imports.run import Source
from app.ingest.enrich import Agent, screen_class

# Umami's browser names (src/lib/constants.ts BROWSERS) -> the names live hits get.
BROWSERS = {
    "android": "Android", "aol": "AOL", "bb10": "BlackBerry", "beaker": "Beaker",
    "chrome": "Chrome", "chromium-webview": "Chrome Webview", "crios": "Chrome",
    "edge": "Microsoft Edge", "edge-chromium": "Microsoft Edge", "edge-ios": "Microsoft Edge",
    "facebook": "Facebook", "firefox": "Firefox", "fxios": "Firefox", "ie": "IE",
    "instagram": "Instagram", "ios": "Safari", "ios-webview": "Safari", "kakaotalk": "KakaoTalk",
    "miui": "MiuiBrowser", "opera": "Opera", "opera-mini": "Opera Mini", "safari": "Safari",
    "samsung": "Samsung Browser", "silk": "Silk", "yandexbrowser": "Yandex Browser",
}  # fmt: skip
# Umami's OS names (detect-browser's detectOS) -> ours, with the version they carry.
OS_NAMES = {
    "Android OS": ("Android", None), "Chrome OS": ("ChromeOS", None), "Mac OS": ("macOS", None),
    "Windows 10": ("Windows", "10"), "Windows 8.1": ("Windows", "8.1"),
    "Windows 8": ("Windows", "8"), "Windows 7": ("Windows", "7"),
    "Windows Vista": ("Windows", "Vista"), "Windows XP": ("Windows", "XP"),
    "Windows Mobile": ("Windows Phone", None), "Linux": ("GNU/Linux", None),
}  # fmt: skip
BOT_BROWSERS = {"searchbot", "curl", "phantomjs"}
EVENT_TYPES = {1: "pageview", 2: "custom"}
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


class Visit(NamedTuple):
    """A session row's attributes, as records carry them."""

    agent: Agent | None
    screen: str | None
    country: str | None
    region: str | None
    city: str | None
    hostname: str | None
    bot: bool


def _kind(header: list[str]) -> str | None:
    cols = set(header)
    if {"url_path", "session_id", "created_at"} <= cols:
        return "website_event"
    if {"website_event_id", "data_key"} <= cols:
        return "event_data"
    if {"event_id", "revenue", "currency"} <= cols:
        return "revenue"
    if "session_id" in cols and cols & {"browser", "os", "device", "screen", "country"}:
        return "session"
    return None


def _visit(row: CsvRow) -> Visit:
    browser_key = (row.text("browser") or "").lower()
    browser = BROWSERS.get(browser_key, row.text("browser"))
    os_text = row.text("os")
    os, os_version = OS_NAMES.get(os_text or "", (os_text, None))
    device = row.text("device")
    if device == "laptop":  # Umami's desktop on a screen up to 1920 wide: a desktop device
        device = "desktop"
    screen = None
    if size := row.text("screen"):
        width = size.lower().split("x")[0]
        screen = screen_class(int(width)) if width.isdigit() else None
    country = (row.text("country") or "").upper() or None
    region = row.text("region") or row.text("subdivision1")
    if region and country and "-" not in region:
        region = f"{country}-{region}"
    return Visit(
        agent=Agent(False, device, browser, None, os, os_version),
        screen=screen,
        country=country if country and len(country) == 2 and country != "XX" else None,
        region=region.upper() if region else None,
        city=row.text("city"),
        hostname=row.text("hostname"),
        bot=browser_key in BOT_BROWSERS,
    )


def _number(value: str) -> str:
    """Umami's DECIMAL(19,4) text without its trailing zeros: '3.0000' -> '3'."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    text = format(number.normalize(), "f")
    return text


def _data_value(row: CsvRow) -> str | None:
    if (number := row.text("number_value")) is not None:
        return _number(number)
    return row.text("string_value") or row.text("date_value")


class Tables:
    """The session, event_data and revenue rows, by id (events are streamed past them)."""

    def __init__(self) -> None:
        self.visits: dict[str, Visit] = {}
        self.props: dict[str, list[tuple[str, str]]] = {}
        self.revenue: dict[str, tuple[Decimal, str]] = {}


def _website_filter(row: CsvRow, chosen: list[str | None]) -> bool:
    """True when the row belongs to the website imported (the first one seen when none was
    chosen; a second one is an error, as the user must pick)."""
    website = row.text("website_id")
    if website is None:
        return True
    if chosen[0] is None:
        chosen[0] = website
        chosen.append(None)  # marks "picked from the data", not by --website
        return True
    if website == chosen[0]:
        return True
    if len(chosen) == 2:
        raise row.invalid(
            "website_id",
            f"the export holds several Umami websites ({chosen[0]}, {website}): choose one"
            " with --website UUID",
        )
    return False


def _load(kind: str, rows: Iterator[CsvRow], tables: Tables, chosen: list[str | None]) -> None:
    for row in rows:
        website = row.text("website_id")
        if chosen[0] is not None and len(chosen) == 1 and website not in (None, chosen[0]):
            continue
        if kind == "session":
            tables.visits[row.required("session_id")] = _visit(row)
        elif kind == "event_data":
            value = _data_value(row)
            if value is not None:
                key = row.required("data_key")
                tables.props.setdefault(row.required("website_event_id"), []).append(
                    (key, value[:2000])
                )
        elif kind == "revenue":
            amount = row.get("revenue", Decimal)
            if amount is not None:
                currency = row.required("currency").upper()
                tables.revenue[row.required("event_id")] = (amount, currency)


def _url(row: CsvRow, host: str) -> str:
    path = row.required("url_path")
    if not path.startswith("/"):
        path = "/" + path
    query = row.text("url_query") or ""
    pairs = parse_qsl(query, keep_blank_values=True)
    names = {k for k, _ in pairs}
    extra = [(k, v) for k in UTM if k not in names and (v := row.text(k) or "")]
    if extra:
        query = f"{query}&{urlencode(extra)}" if query else urlencode(extra)
    url = f"https://{host}{quote(path, safe='/%:@!$&()*+,;=~.-_')}"
    return f"{url}?{query}" if query else url


def _referrer(row: CsvRow) -> str | None:
    domain = row.text("referrer_domain")
    if not domain:
        return None
    path = row.text("referrer_path") or ""
    return f"https://{domain}{path if path.startswith('/') or not path else '/' + path}"


def _revenue(
    event_id: str, props: list[tuple[str, str]], tables: Tables
) -> tuple[Decimal | None, str | None, list[tuple[str, str]]]:
    found = tables.revenue.get(event_id)
    keys = {k.lower(): v for k, v in props}
    if found is None and "revenue" in keys and "currency" in keys:
        try:
            found = (Decimal(keys["revenue"]), keys["currency"].upper())
        except InvalidOperation:
            found = None
    if found is None:
        return None, None, props
    rest = [(k, v) for k, v in props if k.lower() not in ("revenue", "currency")]
    return found[0], found[1], rest


def _record(row: CsvRow, domain: str, tables: Tables, skipped: Counter[str]) -> Record | None:
    event_type = row.get("event_type", int) or 1
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        skipped[f"Umami event_type {event_type} (links, pixels, performance: not pages)"] += 1
        return None
    session = row.required("session_id")
    visit = tables.visits.get(session)
    if row.has("browser") or row.has("country"):  # Umami Cloud: the session's columns inline
        visit = _visit(row)
    if visit is not None and visit.bot:
        skipped["bot (Umami's browser column)"] += 1
        return None
    ts = row.get("created_at", parse_time_us)
    if ts is None:
        raise row.invalid("created_at", "a value is required")
    host = row.text("hostname") or (visit.hostname if visit else None) or domain
    event_id = row.text("event_id") or ""
    name = "pageview"
    if kind == "custom":
        name = row.required("event_name")
    revenue, currency, props = _revenue(event_id, tables.props.get(event_id, []), tables)
    return Record(
        ts_us=ts,
        visitor=session,
        session=row.text("visit_id"),
        name=name,
        url=_url(row, host),
        referrer=_referrer(row),
        agent=visit.agent if visit else None,
        screen=visit.screen if visit else None,
        country=visit.country if visit else None,
        region=visit.region if visit else None,
        city=visit.city if visit else None,
        props=tuple(props),
        revenue=revenue,
        currency=currency,
    )


class _Fast:
    """_record's answers by column index with memoised parsing (an export repeats its
    pages, referrers, sessions and days); anything unusual goes to _record itself."""

    COLUMNS = (
        "website_id", "event_type", "session_id", "created_at", "hostname", "event_id",
        "event_name", "visit_id", "url_path", "url_query", "referrer_domain", "referrer_path",
        *UTM,
    )  # fmt: skip

    def __init__(self, header: list[str], domain: str, tables: Tables) -> None:
        index = {h: i for i, h in enumerate(header)}
        self.at = [index.get(c) for c in self.COLUMNS]
        self.width = max(i for i in self.at if i is not None) + 1
        self.inline = "browser" in index or "country" in index
        self.domain, self.tables = domain, tables
        self.urls: dict[tuple[str, ...], str] = {}
        self.referrers: dict[tuple[str, str], str | None] = {}
        self.days: dict[str, int] = {}

    def time_us(self, value: str) -> int | None:
        """PostgreSQL's UTC text ("2025-03-01 10:00:00.25+00", or ...Z, +00:00) without
        datetime; None: another form (parse_time_us reads it or names the error)."""
        if len(value) < 19 or value[10] not in " T":
            return None
        for suffix in ("+00", "+00:00", "Z"):
            if value.endswith(suffix):
                value = value[: -len(suffix)]
                break
        else:
            return None
        clock, frac = value[11:19], value[19:]
        if clock[2:3] != ":" or clock[5:6] != ":":
            return None
        digits = clock[:2] + clock[3:5] + clock[6:]
        if not (digits.isascii() and digits.isdigit()):
            return None
        micros = 0
        if frac:
            if frac[0] != "." or not (frac[1:].isascii() and frac[1:].isdigit()) or len(frac) > 7:
                return None
            micros = int(frac[1:].ljust(6, "0"))
        h, m, sec = int(clock[:2]), int(clock[3:5]), int(clock[6:])
        if h > 23 or m > 59 or sec > 59:
            return None
        day = self.days.get(value[:10])
        if day is None:
            try:
                day = self.days[value[:10]] = parse_time_us(value[:10] + "T00:00:00Z")
            except ValueError:
                return None
        return day + (h * 3600 + m * 60 + sec) * 1_000_000 + micros

    def record(self, row: CsvRow, skipped: Counter[str]) -> Record | None:
        v = row.values
        if len(v) < self.width or self.inline:
            return _record(row, self.domain, self.tables, skipped)
        t = [v[i].strip() if i is not None else "" for i in self.at]
        _, etype, session, created, host, event_id, name, visit_id, path, query = t[:10]
        ts = self.time_us(created)
        custom = etype == "2"
        if not session or not path or ts is None or etype not in ("", "1", "2"):
            return _record(row, self.domain, self.tables, skipped)
        if custom and not name:
            return _record(row, self.domain, self.tables, skipped)
        visit = self.tables.visits.get(session)
        if visit is not None and visit.bot:
            skipped["bot (Umami's browser column)"] += 1
            return None
        host = host or (visit.hostname if visit else None) or self.domain
        key = (host, path, query, *t[12:])
        url = self.urls.get(key)
        if url is None:
            url = self.urls[key] = _url(row, host)
        ref_key = (t[10], t[11])
        if ref_key in self.referrers:
            referrer = self.referrers[ref_key]
        else:
            referrer = self.referrers[ref_key] = _referrer(row)
        revenue = currency = None
        props: list[tuple[str, str]] | tuple[()] = ()
        if event_id and (event_id in self.tables.props or event_id in self.tables.revenue):
            revenue, currency, props = _revenue(
                event_id, self.tables.props.get(event_id, []), self.tables
            )
        return Record(
            ts_us=ts,
            visitor=session,
            session=visit_id or None,
            name=name if custom else "pageview",
            url=url,
            referrer=referrer,
            agent=visit.agent if visit else None,
            screen=visit.screen if visit else None,
            country=visit.country if visit else None,
            region=visit.region if visit else None,
            city=visit.city if visit else None,
            props=tuple(props),
            revenue=revenue,
            currency=currency,
        )


def _count_events(paths: list[Path]) -> int | None:
    """The website_event files' rows (lines but the header): the progress bar's total."""
    total = 0
    for path in paths:
        header, rows = read_csv(path, display_name(path))
        rows.close()
        if _kind(header) != "website_event":
            continue
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                total += chunk.count(b"\n")
        total -= 1
    return max(total, 0)


def source(domain: str, website: str | None = None) -> Source:
    def read(paths: list[Path], skipped: Counter[str]) -> Iterator[Record]:
        kinds: list[tuple[str, Path]] = []
        for path in paths:
            header, rows = read_csv(path, display_name(path))
            rows.close()
            kind = _kind(header)
            if kind is None:
                raise ImportInvalid(
                    display_name(path),
                    1,
                    None,
                    "not a table of Umami's (the header names none of website_event's"
                    " url_path/session_id/created_at, session's session_id/browser,"
                    " event_data's website_event_id/data_key or revenue's"
                    " event_id/revenue/currency)",
                )
            kinds.append((kind, path))
        if not any(kind == "website_event" for kind, _ in kinds):
            names = ", ".join(display_name(p) for p in paths)
            raise ImportInvalid(names, None, None, "no website_event rows among the files")
        chosen: list[str | None] = [website] if website else [None]
        tables = Tables()
        events = [p for kind, p in kinds if kind == "website_event"]
        for kind, path in kinds:
            if kind != "website_event":
                _, rows = read_csv(path, display_name(path))
                _load(kind, rows, tables, chosen if website else [None])
        for path in events:
            header, rows = read_csv(path, display_name(path))
            fast = _Fast(header, domain, tables)
            at = header.index("website_id") if "website_id" in header else None
            for row in rows:
                website_id = (
                    row.values[at].strip() if at is not None and len(row.values) > at else ""
                )
                if website_id and website_id != chosen[0] and not _website_filter(row, chosen):
                    skipped["another Umami website's rows (--website)"] += 1
                    continue
                rec = fast.record(row, skipped)
                if rec is not None:
                    yield rec

    return Source("umami", read, total=_count_events)
