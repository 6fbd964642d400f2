"""A site's stats in Plausible's CSV export layout: a zip of ten `imported_*` tables, one row
per site-local day and value, which Plausible CE's CSV import (and ours) reads back.

The tables and columns are those of Plausible's own exporter (plausible/analytics
lib/plausible/exports.ex, export_queries/2 and the export_*_q functions), in its column
order; file names `imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` as its importer parses them
(lib/plausible/imported/csv_importer.ex, parse_filename!/1). Every number comes from the
stats engine (the same compiler as every answer), per day:
- days that still have raw events: grouped by all of a table's columns at once;
- days that are rollups only (past the raw window): one column per table (a rollup row
  holds one property), the others empty — e.g. sources without their UTM columns.
Values that Plausible can't hold: our city is a name and Plausible's a GeoNames id, so
`city` is 0 (unknown) unless ours is a number; revenue has no column in the layout."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, NamedTuple

from app.query.model import Filter, Query
from app.query.periods import day_range
from app.query.run import run_query_sync
from app.storage.meta import Site
from app.storage.store import Store

# Plausible's special goals whose URL or path becomes a custom event row's link_url / path
# (lib/plausible/goals/system_goals.ex: goals_with_url/0, goals_with_path/0).
GOALS_WITH_URL = ("Outbound Link: Click", "Cloaked Link: Click", "File Download")
GOALS_WITH_PATH = ("404", "WP Search Queries", "WP Form Completions")
SESSION = ("visitors", "visits", "pageviews", "bounces", "duration")


class Table(NamedTuple):
    """One exported table: its CSV header, the properties it groups by (in the header's
    order), the property a rollup-only day is read by, and how a row is written."""

    header: tuple[str, ...]
    properties: tuple[str, ...]
    rolled_by: str  # "" = the day's totals


def _n(value: Any) -> int:
    return round(value or 0)


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _device(value: Any) -> str:
    return str(value).capitalize() if value else ""


def _city(value: Any) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else 0


SESSION_COLUMNS = ("visitors", "visits", "visit_duration", "bounces", "pageviews")


def _session_cells(r: dict[str, Any]) -> list[Any]:
    """visitors, visits, visit_duration, bounces, pageviews."""
    return [_n(r["visitors"]), _n(r["visits"]), _n(r["duration"]), _n(r["bounces"]),
            _n(r["pageviews"])]  # fmt: skip


TABLES: dict[str, Table] = {
    "imported_visitors": Table(
        ("date", "visitors", "pageviews", "bounces", "visits", "visit_duration"), (), ""
    ),
    "imported_sources": Table(
        (
            "date",
            "source",
            "referrer",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
            "pageviews",
            "visitors",
            "visits",
            "visit_duration",
            "bounces",
        ),
        (
            "source",
            "referrer",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
        ),
        "source",
    ),
    "imported_pages": Table(
        (
            "date",
            "hostname",
            "page",
            "visits",
            "visitors",
            "pageviews",
            "total_scroll_depth",
            "total_scroll_depth_visits",
            "total_time_on_page",
            "total_time_on_page_visits",
        ),
        ("hostname", "page"),
        "page",
    ),
    "imported_entry_pages": Table(
        ("date", "entry_page", "visitors", "entrances", "visit_duration", "bounces", "pageviews"),
        ("entry_page",),
        "entry_page",
    ),
    "imported_exit_pages": Table(
        ("date", "exit_page", "visitors", "visit_duration", "exits", "bounces", "pageviews"),
        ("exit_page",),
        "exit_page",
    ),
    "imported_custom_events": Table(
        ("date", "name", "link_url", "path", "visitors", "events"), ("event",), "event"
    ),
    "imported_locations": Table(
        ("date", "country", "region", "city", *SESSION_COLUMNS),
        ("country", "region", "city"),
        "country",
    ),
    "imported_devices": Table(("date", "device", *SESSION_COLUMNS), ("device",), "device"),
    "imported_browsers": Table(
        ("date", "browser", "browser_version", *SESSION_COLUMNS),
        ("browser", "browser_version"),
        "browser",
    ),
    "imported_operating_systems": Table(
        ("date", "operating_system", "operating_system_version", *SESSION_COLUMNS),
        ("os", "os_version"),
        "os",
    ),
}


def _cells(table: str, day: date, r: dict[str, Any], domain: str) -> list[Any] | None:
    """One CSV row of a table from a row of components (None: a row Plausible leaves out)."""
    d = day.isoformat()
    if table == "imported_visitors":
        return [d, _n(r["visitors"]), _n(r["pageviews"]), _n(r["bounces"]), _n(r["visits"]),
                _n(r["duration"])]  # fmt: skip
    if table == "imported_sources":
        keys = [_s(r.get(p)) for p in TABLES[table].properties]
        return [d, *keys, _n(r["pageviews"]), _n(r["visitors"]), _n(r["visits"]),
                _n(r["duration"]), _n(r["bounces"])]  # fmt: skip
    if table == "imported_pages":
        return [d, _s(r.get("hostname") or domain), _s(r["page"]), _n(r["visits"]),
                _n(r["visitors"]), _n(r["pageviews"]), _n(r.get("scroll_sum")),
                _n(r.get("scroll_count")), _n((r.get("engaged_ms") or 0) / 1000),
                _n(r.get("engaged_visitors"))]  # fmt: skip
    if table == "imported_entry_pages":
        if r["entry_page"] is None:
            return None
        return [d, r["entry_page"], _n(r["visitors"]), _n(r["visits"]), _n(r["duration"]),
                _n(r["bounces"]), _n(r["pageviews"])]  # fmt: skip
    if table == "imported_exit_pages":
        if r["exit_page"] is None:
            return None
        return [d, r["exit_page"], _n(r["visitors"]), _n(r["duration"]), _n(r["visits"]),
                _n(r["bounces"]), _n(r["pageviews"])]  # fmt: skip
    if table == "imported_custom_events":
        url, path = r.get("prop:url"), r.get("prop:path")
        return [d, r["event"], _s(url), _s(path), _n(r["visitors"]), _n(r["events"])]
    if table == "imported_locations":
        if not r["country"]:  # Plausible exports no row for an unknown country
            return None
        return [d, r["country"], _s(r.get("region")), _city(r.get("city")), *_session_cells(r)]
    if table == "imported_devices":
        return [d, _device(r["device"]), *_session_cells(r)]
    keys = [_s(r.get(p)) for p in TABLES[table].properties]
    return [d, *keys, *_session_cells(r)]


class _Exporter:
    def __init__(self, store: Store, site: Site, first: date, last: date) -> None:
        self.store, self.site = store, site
        self.first, self.last = first, last
        self.period = day_range("custom", site.zone, first, last)
        self.pruned = store.pruned_days(site.id, first, last)

    def _raw(
        self, dims: tuple[str, ...], metrics: tuple[str, ...], filters: tuple[Filter, ...] = ()
    ) -> list[dict[str, Any]]:
        """Per day and value of dims, from raw events (rollup-only days have none)."""
        q = Query(
            site_id=self.site.id,
            period=self.period,
            metrics=metrics,
            dimensions=(*dims, "time:day"),
            filters=filters,
            site_timezone=self.site.settled_day_zone,
        )
        # A series without a property comes zero-filled: a day without events is no row.
        return [r for r in run_query_sync(self.store, q).rows if any(r[m] for m in metrics)]

    def _rolled(self, prop: str) -> list[dict[str, Any]]:
        """Per day and value of prop, from the rollups of the rollup-only days."""
        if not self.pruned:
            return []
        rows = self.store.daily_stats(self.site.id, prop, self.pruned)
        out = []
        for r in rows:
            if prop:
                r[prop] = r["value"]
            r["time"] = datetime(r["day"].year, r["day"].month, r["day"].day)
            out.append(r)
        return out

    def rows(self, table: str) -> list[dict[str, Any]]:
        spec = TABLES[table]
        if table == "imported_custom_events":
            return self._custom_events()
        if table == "imported_pages":
            return self._pages()
        metrics = SESSION if table != "imported_visitors" else (*SESSION, "events")
        rows = self._raw(spec.properties, metrics)
        return rows + self._rolled(spec.rolled_by)

    def _pages(self) -> list[dict[str, Any]]:
        """Pageviews per (hostname, page), with the engagement of the same pages."""
        views = self._raw(
            ("hostname", "page"),
            ("visitors", "visits", "pageviews"),
            (Filter("equals", "event", ("pageview",)),),
        )
        engaged = {
            (r["hostname"], r["page"], r["time"]): r
            for r in self._raw(
                ("hostname", "page"),
                ("scroll_sum", "scroll_count", "engaged_ms", "engaged_visitors"),
            )
        }
        for r in views:
            r.update({k: v for k, v in engaged.get((r["hostname"], r["page"], r["time"]),
                                                   {}).items() if k not in r})  # fmt: skip
        return views + [r for r in self._rolled("page") if r["pageviews"]]

    def _custom_events(self) -> list[dict[str, Any]]:
        """Custom events by name; link_url and path only for Plausible's special goals."""
        special = (*GOALS_WITH_URL, *GOALS_WITH_PATH)
        plain = self._raw(
            ("event",),
            ("visitors", "events"),
            (Filter("equals_not", "event", ("pageview", *special)),),
        )
        with_url = self._raw(
            ("event", "prop:url"),
            ("visitors", "events"),
            (Filter("equals", "event", GOALS_WITH_URL),),
        )
        with_path = self._raw(
            ("event", "prop:path"),
            ("visitors", "events"),
            (Filter("equals", "event", GOALS_WITH_PATH),),
        )
        rolled = [r for r in self._rolled("event") if r["event"] != "pageview"]
        return plain + with_url + with_path + rolled


def file_name(table: str, first: date, last: date) -> str:
    return f"{table}_{first:%Y%m%d}_{last:%Y%m%d}.csv"


def archive_name(domain: str, created: date) -> str:
    """Plausible's archive name (exports.ex, archive_filename/2): dots become underscores."""
    return f"{domain.replace('.', '_')}_{created:%Y%m%d}.zip"


def table_csv(exporter: _Exporter, table: str) -> tuple[bytes, int]:
    """One table as CSV bytes (header first, rows by day), and its row count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLES[table].header)
    out = []
    for r in exporter.rows(table):
        cells = _cells(table, r["time"].date(), r, exporter.site.domain)
        if cells is not None:
            out.append(cells)
    out.sort(key=lambda c: (c[0], [str(v) for v in c[1:]]))
    writer.writerows(out)
    return buffer.getvalue().encode(), len(out)


def data_range(store: Store, site_id: str) -> tuple[date, date] | None:
    """The site's first and last local day with data (raw events or rollups)."""
    return store.data_span(site_id)


class _Sink(io.RawIOBase):
    """An unseekable file zipfile writes into; take() hands over what it has written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._at = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._at += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._at

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def stream_zip(
    store: Store,
    site: Site,
    first: date,
    last: date,
    progress: Callable[[str, int], None] | None = None,
) -> Iterator[bytes]:
    """The zip archive of the ten tables, in pieces as each table is written (blocking:
    iterate it on a worker thread)."""
    exporter = _Exporter(store, site, first, last)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES:
            data, n = table_csv(exporter, table)
            archive.writestr(file_name(table, first, last), data)
            if progress:
                progress(table, n)
            yield sink.take()
    yield sink.take()
