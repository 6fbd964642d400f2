"""Google Analytics 4: the BigQuery export's daily events_YYYYMMDD tables, each as a Parquet
file or newline-delimited JSON (plain or .gz), as `bq extract` or a console export writes
them. One row per GA4 event.

Columns, from Google's schema documentation ("[GA4] BigQuery Export schema",
https://support.google.com/analytics/answer/7029846, the same text at
https://developers.google.com/analytics/bigquery/event-schema):
- event_timestamp: UTC microseconds (JSON exports write INT64 as strings: both are read);
  event_name; user_pseudo_id (the browser's client id: our visitor, hashed with the import's
  key and never stored).
- event_params: repeated {key, value: {string_value, int_value, float_value,
  double_value}}: page_location (the page's URL), page_referrer, ga_session_id (the visit,
  per user), currency and value, and the event's own parameters.
- device: category (desktop, mobile, tablet), operating_system, operating_system_version,
  web_info.browser, web_info.browser_version.
- geo: country (a name, "United States"), city. Region names are not ISO codes: not read.
- collected_traffic_source: manual_source, manual_medium, manual_campaign_name,
  manual_content, manual_term (the event's UTM values when page_location has none).
  traffic_source is the user's first acquisition, not this visit's: not read.
- ecommerce.purchase_revenue (in the currency of the event's currency parameter) and
  purchase_revenue_in_usd.

GA4 semantics kept: page_view -> a pageview; session_start, first_visit and
user_engagement are GA4's own bookkeeping (visits come from ga_session_id, visitors from
user_pseudo_id, and engagement pings are not actions): skipped and counted; purchase -> a
custom event "purchase" with its revenue; every other event (scroll, click,
file_download, form_submit, the site's own) -> a custom event of that name, its
parameters but GA4's internal ones as props."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.imports.build import Record
from app.imports.csvfiles import display_name
from app.imports.errors import ImportInvalid
from app.imports.ga4_countries import CODES
from app.imports.run import Source
from app.ingest.enrich import Agent

SKIPPED_EVENTS = ("session_start", "first_visit", "user_engagement")
# GA4's own parameters: the page, the session, engagement and batching (not the event's).
INTERNAL_PARAMS = {
    "page_location", "page_referrer", "page_title", "ga_session_id", "ga_session_number",
    "engagement_time_msec", "session_engaged", "engaged_session_event", "entrances",
    "ignore_referrer", "batch_page_id", "batch_ordering_id", "debug_mode", "currency",
    "value", "source", "medium", "campaign", "term", "content", "gclid", "dclid", "srsltid",
    "synthetic_bundle", "firebase_conversion", "page_path", "page_hostname",
}  # fmt: skip
BROWSERS = {
    "Edge": "Microsoft Edge", "Samsung Internet": "Samsung Browser",
    "Android Webview": "Chrome Webview", "Safari (in-app)": "Safari",
}  # fmt: skip
OS_NAMES = {"Macintosh": "macOS", "Linux": "GNU/Linux", "Chrome OS": "ChromeOS"}
DEVICES = {"desktop": "desktop", "mobile": "mobile", "tablet": "tablet", "smart tv": "desktop"}
TRAFFIC = (
    ("utm_source", "manual_source"),
    ("utm_medium", "manual_medium"),
    ("utm_campaign", "manual_campaign_name"),
    ("utm_content", "manual_content"),
    ("utm_term", "manual_term"),
)
BATCH = 8192
MAX_PROP = 2000


class Bad(Exception):
    """A value that can't be read: the column and the problem (the row adds file and line)."""

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(problem)
        self.column, self.problem = column, problem


def _int(value: Any, column: str) -> int:
    if isinstance(value, bool):
        raise Bad(column, f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if value is None:
        raise Bad(column, "a value is required")
    raise Bad(column, f"{str(value)[:80]!r} is not an integer")


def _params(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in row.get("event_params") or ():
        if not isinstance(param, dict) or not isinstance(param.get("key"), str):
            raise Bad("event_params", "each parameter is {key, value: {...}}")
        value = param.get("value") or {}
        if not isinstance(value, dict):
            raise Bad(f"event_params.{param['key']}", "the value is a record")
        for kind in ("string_value", "int_value", "double_value", "float_value"):
            if value.get(kind) is not None:
                out[param["key"]] = value[kind]
                break
    return out


def _text(value: Any) -> str:
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _version(value: Any) -> str | None:
    """ "120.0.6099.129" -> "120.0" (as live hits keep major.minor)."""
    if not isinstance(value, str) or not value or value == "(not set)":
        return None
    return ".".join(value.split(".")[:2])


_AGENTS: dict[tuple[Any, ...], Agent] = {}


def _agent(device: dict[str, Any]) -> Agent:
    web = device.get("web_info") or {}
    key = (
        device.get("category"),
        device.get("operating_system"),
        device.get("operating_system_version"),
        web.get("browser") or device.get("browser"),
        web.get("browser_version") or device.get("browser_version"),
    )
    found = _AGENTS.get(key)
    if found is None:
        if len(_AGENTS) > 100_000:
            _AGENTS.clear()
        found = _AGENTS[key] = _parse_agent(*key)
    return found


def _parse_agent(
    category: Any, os: Any, os_version: Any, browser: Any, browser_version: Any
) -> Agent:
    if isinstance(os_version, str) and isinstance(os, str) and os_version.startswith(os):
        os_version = os_version[len(os) :].strip()  # "iOS 17.1" -> "17.1"
    category = str(category or "").lower()
    return Agent(
        False,
        DEVICES.get(category),
        BROWSERS.get(browser, browser) if browser and browser != "(not set)" else None,
        _version(browser_version),
        OS_NAMES.get(os, os) if os and os != "(not set)" else None,
        _version(os_version),
    )


def _url(location: str, traffic: dict[str, Any]) -> str:
    """page_location, with the event's collected UTM values added where it has none."""
    if not traffic or not any(
        traffic.get(field) not in (None, "", "(not set)", "(none)") for _, field in TRAFFIC
    ):
        return location
    parts = urlsplit(location)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    have = {k for k, _ in pairs}
    extra = [
        (utm, str(traffic[field]))
        for utm, field in TRAFFIC
        if utm not in have and traffic.get(field) not in (None, "", "(not set)", "(none)")
    ]
    if not extra:
        return location
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit(parts._replace(query=query))


def _revenue(row: dict[str, Any], params: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    commerce = row.get("ecommerce") or {}
    currency = params.get("currency")
    amount = commerce.get("purchase_revenue")
    if amount is None:
        amount = params.get("value")
    if amount is not None and isinstance(currency, str) and len(currency.strip()) == 3:
        try:
            return Decimal(_text(amount)), currency.strip().upper()
        except InvalidOperation:
            raise Bad("ecommerce.purchase_revenue", f"{amount!r} is not a number") from None
    usd = commerce.get("purchase_revenue_in_usd")
    if usd is not None:
        return Decimal(_text(usd)), "USD"
    return None, None


def record(row: dict[str, Any], skipped: Counter[str]) -> Record | None:
    """One GA4 event row -> a record (None: skipped, counted)."""
    name = row.get("event_name")
    if not isinstance(name, str) or not name:
        raise Bad("event_name", "a value is required")
    if name in SKIPPED_EVENTS:
        skipped["GA4's session_start, first_visit and user_engagement (not actions)"] += 1
        return None
    ts = _int(row.get("event_timestamp"), "event_timestamp")
    user = row.get("user_pseudo_id")
    if not user:
        raise Bad("user_pseudo_id", "a value is required")
    params = row["_params"] if "_params" in row else _params(row)
    location = params.get("page_location")
    if not isinstance(location, str) or not location.startswith(("http://", "https://")):
        skipped["no page_location (not a web page's event)"] += 1
        return None
    session = params.get("ga_session_id")
    referrer = params.get("page_referrer")
    if params.get("ignore_referrer") in ("true", True):
        referrer = None
    geo = row.get("geo") or {}
    country_name = geo.get("country")
    country = None
    if isinstance(country_name, str):
        country = CODES.get(country_name.strip().lower())
        if country is None and len(country_name) == 2 and country_name.isalpha():
            country = country_name.upper()
    city = geo.get("city")
    revenue, currency = (None, None)
    if name == "purchase":
        revenue, currency = _revenue(row, params)
    props = tuple(
        (key, _text(value)[:MAX_PROP])
        for key, value in sorted(params.items())
        if key not in INTERNAL_PARAMS
    )
    return Record(
        ts_us=ts,
        visitor=str(user),
        session=_text(session) if session is not None else None,
        name="pageview" if name == "page_view" else name,
        url=_url(location, row.get("collected_traffic_source") or {}),
        referrer=referrer if isinstance(referrer, str) and referrer else None,
        agent=_agent(row.get("device") or {}),
        country=country,
        city=city if isinstance(city, str) and city and city != "(not set)" else None,
        props=props,
        revenue=revenue,
        currency=currency,
    )


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def _parquet_rows(path: Path, label: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a Parquet export, a batch at a time, column by column: the event's
    parameters read as flat arrays (GA4's nested records as Python dicts would cost more
    than the rest of the import)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ImportInvalid(label, None, None, f"not a readable Parquet file ({exc})") from None
    schema = table.schema_arrow
    for column in ("event_timestamp", "event_name", "user_pseudo_id"):
        if column not in schema.names:
            raise ImportInvalid(
                label, None, column, "not a GA4 events_YYYYMMDD table: the column is missing"
            )
    fields = {
        "device": ("category", "operating_system", "operating_system_version",
                   ("web_info", "browser"), ("web_info", "browser_version")),
        "geo": ("country", "city"),
        "collected_traffic_source": tuple(field for _, field in TRAFFIC),
        "ecommerce": ("purchase_revenue", "purchase_revenue_in_usd"),
    }  # fmt: skip
    wanted = ["event_timestamp", "event_name", "user_pseudo_id", "event_params"]
    wanted = [c for c in [*wanted, *fields] if c in schema.names]

    def subfields(batch: pa.RecordBatch, column: str) -> dict[str, list[Any]] | None:
        if column not in batch.schema.names:
            return None
        array = batch.column(column)
        out: dict[str, list[Any]] = {}
        for field in fields[column]:
            path_ = [field] if isinstance(field, str) else list(field)
            try:
                out[path_[-1] if len(path_) == 1 else ".".join(path_)] = pc.struct_field(
                    array, path_
                ).to_pylist()
            except (pa.ArrowException, KeyError, TypeError):
                continue  # a field this export lacks
        return out

    n = 0
    try:
        for batch in table.iter_batches(batch_size=BATCH, columns=wanted):
            size = batch.num_rows
            ts = batch.column("event_timestamp").to_pylist()
            names = batch.column("event_name").to_pylist()
            users = batch.column("user_pseudo_id").to_pylist()
            try:
                params = _parquet_params(batch, size)
            except Bad as bad:
                raise ImportInvalid(label, None, bad.column, bad.problem) from None
            device = subfields(batch, "device") or {}
            geo = subfields(batch, "geo") or {}
            traffic = subfields(batch, "collected_traffic_source")
            commerce = subfields(batch, "ecommerce")
            for i in range(size):
                n += 1
                yield (
                    n,
                    {
                        "event_timestamp": ts[i],
                        "event_name": names[i],
                        "user_pseudo_id": users[i],
                        "_params": params[i],
                        "device": {
                            "category": _at(device, "category", i),
                            "operating_system": _at(device, "operating_system", i),
                            "operating_system_version": _at(device, "operating_system_version", i),
                            "web_info": {
                                "browser": _at(device, "web_info.browser", i),
                                "browser_version": _at(device, "web_info.browser_version", i),
                            },
                        },
                        "geo": {"country": _at(geo, "country", i), "city": _at(geo, "city", i)},
                        "collected_traffic_source": (
                            {k: v[i] for k, v in traffic.items()} if traffic else None
                        ),
                        "ecommerce": {k: v[i] for k, v in commerce.items()} if commerce else None,
                    },
                )
    except pa.ArrowException as exc:
        raise ImportInvalid(label, n + 1, None, f"unreadable Parquet data ({exc})") from None


def _at(columns: dict[str, list[Any]], name: str, i: int) -> Any:
    values = columns.get(name)
    return values[i] if values is not None else None


def _parquet_params(batch: Any, size: int) -> list[dict[str, Any]]:
    """event_params of each row as {key: value} (the first value set of the four types)."""
    import pyarrow as pa

    if "event_params" not in batch.schema.names:
        return [{} for _ in range(size)]
    column = batch.column("event_params")
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise Bad("event_params", "each parameter is {key, value: {...}}")
    offsets = column.offsets.to_pylist()  # into .values, even for a slice
    flat = column.values
    keys = flat.field("key").to_pylist()
    value = flat.field("value")
    kinds = [value.field(k).to_pylist() for k in
             ("string_value", "int_value", "double_value", "float_value")
             if value.type.get_field_index(k) >= 0]  # fmt: skip
    valid = column.is_valid().to_pylist()
    out: list[dict[str, Any]] = []
    for i in range(size):
        row: dict[str, Any] = {}
        if valid[i]:
            for j in range(offsets[i], offsets[i + 1]):
                for values in kinds:
                    if values[j] is not None:
                        row[keys[j]] = values[j]
                        break
        out.append(row)
    return out


def _json_rows(path: Path, label: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8") as lines:
        n = 0
        while True:
            try:
                line = lines.readline()
            except (UnicodeDecodeError, OSError, EOFError) as exc:
                raise ImportInvalid(label, n + 1, None, f"unreadable ({exc})") from None
            if not line:
                return
            n += 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"not a JSON object ({exc.msg} at character {exc.pos + 1})"
                raise ImportInvalid(label, n, None, problem) from None
            if not isinstance(row, dict):
                raise ImportInvalid(label, n, None, "not a JSON object (one event per line)")
            yield n, row


def _count_rows(paths: list[Path]) -> int | None:
    """The files' events (Parquet's row counts, JSON's lines): the progress bar's total;
    None when a file is gzipped (counting it would read it twice)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        if _is_parquet(path):
            try:
                total += pq.ParquetFile(path).metadata.num_rows
            except (pa.ArrowException, OSError):
                return None
            continue
        with path.open("rb") as f:
            if f.read(2) == b"\x1f\x8b":
                return None
            f.seek(0)
            while chunk := f.read(1 << 20):
                total += chunk.count(b"\n")
    return total


def source(domain: str) -> Source:
    def read(paths: list[Path], skipped: Counter[str]) -> Iterator[Record]:
        for path in paths:
            label = display_name(path)
            rows = _parquet_rows(path, label) if _is_parquet(path) else _json_rows(path, label)
            for line, row in rows:
                try:
                    rec = record(row, skipped)
                except Bad as bad:
                    raise ImportInvalid(label, line, bad.column, bad.problem) from None
                if rec is not None:
                    yield rec

    return Source("ga4", read, total=_count_rows)
