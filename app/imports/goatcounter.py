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


def source(domain: str) -> Source:
    def read(paths: list[Path], skipped: Counter[str]) -> Iterator[Record]:
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
            for row in rows:
                rec = _record(row, domain, skipped)
                if rec is not None:
                    yield rec

    return Source("goatcounter", read)
