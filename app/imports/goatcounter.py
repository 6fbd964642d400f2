"""GoatCounter's CSV export, version 2: one row per pageview or event.

Columns, from GoatCounter's own writer (arp242/goatcounter export.go, Export.Run, and its
documentation tpl/help/export.md): 2Path, Title, Event, UserAgent, Browser, System,
Session, Bot, Referrer, Referrer scheme, Screen size, Location, FirstVisit, Date.
- Path: the page path, or the event's name when Event is true.
- Session: GoatCounter's visitor id (a UUID); our visits end after 30 idle minutes.
- Browser / System: "Firefox 121" / "Windows 10" (name, then version).
- Bot: 0, or an isbot constant: such rows are skipped.
- Referrer scheme: h (a URL), g (a generated name such as "Hacker News"), c (a campaign
  parameter's text), o (other, e.g. an Android app): g and c become the visit's source.
- Screen size: "width,height,scale"; Location: "US" or "US-TX"; Date: RFC 3339."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from app.imports.build import Record
from app.imports.csvfiles import CsvRow, display_name, parse_time_us, read_csv
from app.imports.errors import ImportInvalid
from app.imports.run import Source
from app.ingest.enrich import Agent, screen_class

HEADER = (
    "2Path", "Title", "Event", "UserAgent", "Browser", "System", "Session", "Bot",
    "Referrer", "Referrer scheme", "Screen size", "Location", "FirstVisit", "Date",
)  # fmt: skip


def _name_version(value: str | None) -> tuple[str | None, str | None]:
    """ "Chrome 120" -> ("Chrome", "120"); "Linux" -> ("Linux", None)."""
    if not value:
        return None, None
    name, _, version = value.rpartition(" ")
    if name and version[:1].isdigit():
        return name, version
    return value, None


def _screen(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return screen_class(int(float(value.split(",")[0])))
    except ValueError:
        return None


def _record(row: CsvRow, domain: str, skipped: Counter[str]) -> Record | None:
    if row.text("Bot") not in (None, "0"):
        skipped["bot (GoatCounter's Bot column)"] += 1
        return None
    path = row.required("2Path")
    event = (row.text("Event") or "false").lower() in ("true", "1")
    ts = row.get("Date", parse_time_us)
    if ts is None:
        raise row.invalid("Date", "a value is required")
    referrer, scheme = row.text("Referrer"), row.text("Referrer scheme")
    query = ""
    if referrer and scheme in ("g", "c"):
        query, referrer = f"?ref={quote(referrer, safe='')}", None
    page = "/" if event or not path.startswith("/") else path
    browser, browser_version = _name_version(row.text("Browser"))
    os, os_version = _name_version(row.text("System"))
    location = row.text("Location") or ""
    country = location[:2].upper() if len(location) >= 2 else None
    return Record(
        ts_us=ts,
        visitor=row.text("Session") or f"line {row.line}",
        session=None,
        name=path if event else "pageview",
        url=f"https://{domain}{quote(page, safe='/%:@!$&()*+,;=~.-_')}{query}",
        referrer=referrer,
        agent=Agent(False, None, browser, browser_version, os, os_version),
        screen=_screen(row.text("Screen size")),
        country=country,
        region=location.upper() if len(location) > 3 and location[2] == "-" else None,
    )


class _Cached:
    """The per-value parsing of _record, memoised: an export repeats its paths, browsers,
    screens and places, and every row of a day shares its date."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.urls: dict[tuple[str, bool, str], str] = {}
        self.agents: dict[tuple[str | None, str | None], Agent] = {}
        self.screens: dict[str | None, str | None] = {}
        self.days: dict[str, int] = {}
        self.minutes: dict[str, int] = {}

    def url(self, page: str, query: str) -> str:
        return f"https://{self.domain}{quote(page, safe='/%:@!$&()*+,;=~.-_')}{query}"

    def agent(self, browser: str | None, system: str | None) -> Agent:
        found = self.agents.get((browser, system))
        if found is None:
            name, version = _name_version(browser)
            os, os_version = _name_version(system)
            found = self.agents[(browser, system)] = Agent(
                False, None, name, version, os, os_version
            )
        return found

    def time_us(self, value: str) -> int | None:
        """2025-03-01T10:00:00Z (GoatCounter's own form) without datetime, from its minute's
        start (memoised); None: another form (parse_time_us reads it, or names the error)."""
        if len(value) != 20 or value[10] != "T" or value[16] != ":" or value[19] != "Z":
            return None
        sec = value[17:19]
        if not (sec.isascii() and sec.isdigit()) or sec > "59":
            return None
        minute = self.minutes.get(value[:16])
        if minute is None:
            minute = self._minute(value[:16])
            if minute is None:
                return None
            if len(self.minutes) >= 100_000:
                self.minutes.clear()
            self.minutes[value[:16]] = minute
        return minute + int(sec) * 1_000_000

    def _minute(self, prefix: str) -> int | None:
        """ "2025-03-01T10:00" as UTC microseconds, or None when it isn't one."""
        clock = prefix[11:16]
        digits = clock[:2] + clock[3:]
        if clock[2] != ":" or not (digits.isascii() and digits.isdigit()):
            return None
        h, m = int(clock[:2]), int(clock[3:])
        if h > 23 or m > 59:
            return None
        day = self.days.get(prefix[:10])
        if day is None:
            try:
                day = self.days[prefix[:10]] = parse_time_us(prefix[:10] + "T00:00:00Z")
            except ValueError:
                return None
        return day + (h * 3600 + m * 60) * 1_000_000


_COLUMNS = (
    "2Path", "Event", "Browser", "System", "Session", "Bot", "Referrer", "Referrer scheme",
    "Screen size", "Location", "Date",
)  # fmt: skip


def _fast_records(
    rows: Iterator[CsvRow], header: list[str], cache: _Cached, skipped: Counter[str]
) -> Iterator[Record]:
    """_record's answers, row by row, by column index and memoised parsing; a row _record
    would refuse (or one this doesn't read the common way) goes to _record itself."""
    index = {h: i for i, h in enumerate(header)}
    if any(c not in index for c in _COLUMNS):
        for row in rows:
            rec = _record(row, cache.domain, skipped)
            if rec is not None:
                yield rec
        return
    i_path, i_event, i_browser, i_system, i_session, i_bot, i_ref, i_scheme = (
        index[c] for c in _COLUMNS[:8]
    )
    i_screen, i_location, i_date = index["Screen size"], index["Location"], index["Date"]
    width = max(index[c] for c in _COLUMNS) + 1
    urls, screens = cache.urls, cache.screens
    bot_reason = "bot (GoatCounter's Bot column)"
    for row in rows:
        v = row.values
        if len(v) < width:
            rec = _record(row, cache.domain, skipped)
            if rec is not None:
                yield rec
            continue
        bot = v[i_bot].strip()
        if bot and bot != "0":
            skipped[bot_reason] += 1
            continue
        path = v[i_path].strip()
        ts = cache.time_us(v[i_date].strip()) if path else None
        if ts is None:  # a missing path or date, or another time form: _record decides
            rec = _record(row, cache.domain, skipped)
            if rec is not None:
                yield rec
            continue
        event = (v[i_event].strip() or "false").lower() in ("true", "1")
        referrer, scheme = v[i_ref].strip() or None, v[i_scheme].strip()
        query = ""
        if referrer and scheme in ("g", "c"):
            query, referrer = f"?ref={quote(referrer, safe='')}", None
        page = "/" if event or not path.startswith("/") else path
        key = (page, event, query)
        url = urls.get(key)
        if url is None:
            url = urls[key] = cache.url(page, query)
        size = v[i_screen].strip() or None
        if size in screens:
            screen = screens[size]
        else:
            screen = screens[size] = _screen(size)
        location = v[i_location].strip()
        yield Record(
            ts_us=ts,
            visitor=v[i_session].strip() or f"line {row.line}",
            session=None,
            name=path if event else "pageview",
            url=url,
            referrer=referrer,
            agent=cache.agent(v[i_browser].strip() or None, v[i_system].strip() or None),
            screen=screen,
            country=location[:2].upper() if len(location) >= 2 else None,
            region=location.upper() if len(location) > 3 and location[2] == "-" else None,
        )


def _count_lines(paths: list[Path]) -> int | None:
    """Rows in the files (lines but each header; a quoted newline counts one more): the
    progress bar's total, read at disk speed."""
    total = 0
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                total += chunk.count(b"\n")
        total -= 1
    return max(total, 0)


def source(domain: str) -> Source:
    def read(paths: list[Path], skipped: Counter[str]) -> Iterator[Record]:
        cache = _Cached(domain)
        for path in paths:
            header, rows = read_csv(path, display_name(path))
            if header[:1] != ["2Path"]:
                rows.close()
                found = ",".join(header[:3])
                raise ImportInvalid(
                    display_name(path),
                    1,
                    None,
                    "not a GoatCounter CSV export of version 2 (the header starts"
                    f" {found!r}; expected {','.join(HEADER[:3])!r})",
                )
            yield from _fast_records(rows, header, cache, skipped)

    return Source("goatcounter", read, total=_count_lines)
