"""Plausible's CSV export (CE or cloud): a zip (or folder) of `imported_*.csv` daily tables,
stored as imported aggregates (imported_stats, migration events/007), apart from the site's
own data and added to answers only when asked (app/query/imported.py).

Tables, columns and file names are those Plausible's importer reads
(plausible/analytics lib/plausible/imported/csv_importer.ex: input_structures and
parse_filename!/1, `imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` or without the `imported_`
prefix) and its exporter writes (lib/plausible/exports.ex). Columns are read by their
header name, as ClickHouse's CSVWithNames does, so exports of older Plausible versions
(imported_pages with scroll_depth + pageleave_visitors instead of total_scroll_depth +
total_scroll_depth_visits, no time-on-page columns) import too. Meanings:
- visit_duration is seconds summed over visits, bounces a count (not rates);
- entry pages' entrances and exit pages' exits are their visits;
- a custom event's link_url / path are its url / path property;
- device is a screen class ("Desktop"), stored lower-case as ours; city a GeoNames id;
- a source row's channel is derived by the ingest code (referrer, UTM), as for live hits."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from app.errors import Conflict
from app.imports.csvfiles import CsvRow, display_name, read_csv
from app.imports.errors import ImportInvalid
from app.ingest.referrers import classify
from app.storage import imports
from app.storage.import_jobs import ImportJob
from app.storage.imports import IMPORTED_COLUMNS
from app.storage.meta import Site
from app.storage.store import Store

Progress = Callable[[int, int | None], None]
_FILE = re.compile(r"^(?:imported_)?([a-z_]+?)_(\d{8})_(\d{8})\.csv$")
_DIMS = {  # table -> (CSV column, imported_stats column) of its dimensions
    "visitors": (),
    "sources": (
        ("source", "source"),
        ("referrer", "referrer"),
        ("utm_source", "utm_source"),
        ("utm_medium", "utm_medium"),
        ("utm_campaign", "utm_campaign"),
        ("utm_content", "utm_content"),
        ("utm_term", "utm_term"),
    ),
    "pages": (("hostname", "hostname"), ("page", "pathname")),
    "entry_pages": (("entry_page", "entry_page"),),
    "exit_pages": (("exit_page", "exit_page"),),
    "custom_events": (("name", "name"),),
    "locations": (("country", "country"), ("region", "region"), ("city", "city")),
    "devices": (("device", "device"),),
    "browsers": (("browser", "browser"), ("browser_version", "browser_version")),
    "operating_systems": (
        ("operating_system", "os"),
        ("operating_system_version", "os_version"),
    ),
}
# The count columns each table must have (csv_importer.ex's input structures, the ones
# every version has), and the imported_stats count each one fills.
_COUNTS = {
    "visitors": {"visitors": "visitors", "pageviews": "pageviews", "bounces": "bounces",
                 "visits": "visits", "visit_duration": "duration"},
    "pages": {"visitors": "visitors", "pageviews": "pageviews"},
    "entry_pages": {"visitors": "visitors", "entrances": "visits",
                    "visit_duration": "duration", "bounces": "bounces"},
    "exit_pages": {"visitors": "visitors", "exits": "visits"},
    "custom_events": {"visitors": "visitors", "events": "events"},
}  # fmt: skip
_SESSION_COUNTS = {
    "visitors": "visitors",
    "visits": "visits",
    "visit_duration": "duration",
    "bounces": "bounces",
}
for _t in ("sources", "locations", "devices", "browsers", "operating_systems"):
    _COUNTS[_t] = _SESSION_COUNTS
# Columns some versions have: read when present, 0 when not.
_OPTIONAL = {
    "sources": {"pageviews": "pageviews"},
    "pages": {
        "visits": "visits",
        "total_scroll_depth": "scroll_sum",
        "total_scroll_depth_visits": "scroll_count",
        "scroll_depth": "scroll_sum",  # before total_scroll_depth (with pageleave_visitors)
        "pageleave_visitors": "scroll_count",
        "total_time_on_page": "engaged_ms",  # seconds: * 1000 below
        "total_time_on_page_visits": "engaged_visitors",
    },
    "entry_pages": {"pageviews": "pageviews"},
    "exit_pages": {"pageviews": "pageviews", "visit_duration": "duration", "bounces": "bounces"},
    "locations": {"pageviews": "pageviews"},
    "devices": {"pageviews": "pageviews"},
    "browsers": {"pageviews": "pageviews"},
    "operating_systems": {"pageviews": "pageviews"},
}
TABLES = tuple(_DIMS)
_METRICS = IMPORTED_COLUMNS[IMPORTED_COLUMNS.index("visitors") :]


def table_of(path: Path) -> tuple[str, date, date]:
    """(table, first day, last day) from a file's name, or ImportInvalid."""
    name = display_name(path)
    match = _FILE.match(name)
    table = match.group(1) if match else None
    if match is None or table not in _DIMS:
        raise ImportInvalid(
            name,
            None,
            None,
            "not a table of Plausible's CSV export (expected imported_<table>_<YYYYMMDD>"
            f"_<YYYYMMDD>.csv with a table among {', '.join(TABLES)})",
        )
    try:
        first, last = (date.fromisoformat(match.group(i)) for i in (2, 3))
    except ValueError:
        raise ImportInvalid(name, None, None, "the dates in the file name are not valid") from None
    return table, first, last


def _count(value: str) -> int:
    n = int(value)
    if not 0 <= n < 1 << 62:
        raise ValueError("out of range")
    return n


def _row(table: str, row: CsvRow, first: date, last: date) -> dict[str, Any]:
    day = row.get("date", date.fromisoformat)
    if day is None:
        raise row.invalid("date", "a value is required")
    if not first <= day <= last:
        raise row.invalid("date", f"{day} is outside the file's dates ({first} .. {last})")
    out: dict[str, Any] = {"day": day, "kind": table}
    for column, target in _DIMS[table]:
        out[target] = row.text(column)
    for column, target in (*_COUNTS[table].items(), *_OPTIONAL.get(table, {}).items()):
        if row.has(column) and target not in out:
            out[target] = row.get(column, _count) or 0
    if "engaged_ms" in out:
        out["engaged_ms"] *= 1000
    return out


def _finish(table: str, r: dict[str, Any]) -> dict[str, Any]:
    """The derived columns of a row: events, channel, a custom event's props, cases."""
    for metric in _METRICS:
        r.setdefault(metric, 0)
    r["events"] = r["events"] if table == "custom_events" else r["pageviews"]
    if table == "visitors":
        r["name"] = "pageview"  # a day's pageviews are the event breakdown's pageview row
    if table == "sources":
        # A source without its referrer (e.g. "Google" from a click id) is classified
        # by its name, as a ?ref= source would be.
        ref = r["source"] if not r["referrer"] else None
        src = classify(r["referrer"], None, r["utm_source"], r["utm_medium"],
                       r["utm_campaign"], ref, None)  # fmt: skip
        r["channel"] = src.channel
    if table == "custom_events":
        props = {key: r.pop(column) for column, key in (("link_url", "url"), ("path", "path"))}
        r["props"] = {k: v for k, v in props.items() if v} or None
    if table == "devices" and r["device"]:
        r["device"] = r["device"].lower()
    if table == "locations" and r["city"] in ("0", None):
        r["city"] = None
    return r


def read_tables(paths: list[Path], skipped: Counter[str]) -> list[dict[str, Any]]:
    """Every row of every table (file, line and column named on any bad value)."""
    out: list[dict[str, Any]] = []
    for path in paths:
        table, first, last = table_of(path)
        needed = ("date", *(c for c, _ in _DIMS[table]), *_COUNTS[table])
        if table == "custom_events":
            needed = ("date", "name", "visitors", "events")
        _, rows = read_csv(path, display_name(path), needed)
        for row in rows:
            r = _row(table, row, first, last)
            if table == "custom_events":
                r["link_url"], r["path"] = row.text("link_url"), row.text("path")
            if table == "locations" and r["country"] in (None, "ZZ"):
                skipped["location without a country"] += 1
                continue
            out.append(_finish(table, r))
    return out


def _arrow(rows: list[dict[str, Any]], seq: int, site_id: str) -> pa.Table:
    columns: dict[str, list[Any]] = {c: [] for c in IMPORTED_COLUMNS}
    for r in rows:
        r["seq"], r["site_id"] = seq, site_id
        for c in IMPORTED_COLUMNS:
            columns[c].append(r.get(c))
    types = {"seq": pa.int32(), "day": pa.date32(), "duration": pa.float64(),
             "props": pa.map_(pa.string(), pa.string())}  # fmt: skip
    return pa.table(
        {
            c: pa.array(
                [list(v.items()) if c == "props" and v else v for v in values]
                if c == "props"
                else values,
                types.get(c, pa.int64() if c in _METRICS else pa.string()),
            )
            for c, values in columns.items()
        }
    )


def run_aggregate(
    store: Store,
    site: Site,
    job: ImportJob,
    paths: list[Path],
    overlap_days: Callable[[date, date], set[date]],
    progress: Progress | None,
) -> dict[str, Any]:
    """A Plausible export into imported_stats, in one transaction: read every table (any
    error stops here), check the days against the site's own data (--overlap), write."""
    skipped: Counter[str] = Counter()
    rows = read_tables(paths, skipped)
    if progress:
        progress(len(rows), len(rows))
    days = {r["day"] for r in rows}
    overlap = overlap_days(min(days), max(days)) & days if days else set()
    if overlap and job.overlap not in ("skip", "keep-both"):
        raise Conflict(
            f"{len(overlap)} of the import's {len(days)} days already have data of the"
            f" site ({min(overlap)} .. {max(overlap)}): choose --overlap skip (import only the"
            " other days) or --overlap keep-both (keep the imported days too; answers that"
            " include imports add them)"
        )
    if job.overlap == "skip" and overlap:
        kept = [r for r in rows if r["day"] not in overlap]
        skipped["day already has native data (--overlap skip)"] += len(rows) - len(kept)
        rows = kept
    tables = Counter(r["kind"] for r in rows)
    imports.apply_imported_stats(
        store,
        seq=job.seq,
        site_id=site.id,
        source="plausible",
        content_hash=job.content_hash,
        rows=_arrow(rows, job.seq, site.id),
    )
    kept_days = sorted({r["day"] for r in rows})
    return {
        "rows_read": len(rows) + sum(skipped.values()),
        "rows_imported": len(rows),
        "tables": dict(sorted(tables.items())),
        "days": len(kept_days),
        "first_day": kept_days[0].isoformat() if kept_days else None,
        "last_day": kept_days[-1].isoformat() if kept_days else None,
        "days_overlapping_native_data": len(overlap),
        "skipped": dict(skipped),
    }
