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


def _agent(device: dict[str, Any]) -> Agent:
    web = device.get("web_info") or {}
    browser = web.get("browser") or device.get("browser")
    os = device.get("operating_system")
    os_version = device.get("operating_system_version")
    if isinstance(os_version, str) and isinstance(os, str) and os_version.startswith(os):
        os_version = os_version[len(os) :].strip()  # "iOS 17.1" -> "17.1"
    category = str(device.get("category") or "").lower()
    return Agent(
        False,
        DEVICES.get(category),
        BROWSERS.get(browser, browser) if browser and browser != "(not set)" else None,
        _version(web.get("browser_version") or device.get("browser_version")),
        OS_NAMES.get(os, os) if os and os != "(not set)" else None,
        _version(os_version),
    )


def _url(location: str, traffic: dict[str, Any]) -> str:
    """page_location, with the event's collected UTM values added where it has none."""
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
    params = _params(row)
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ImportInvalid(label, None, None, f"not a readable Parquet file ({exc})") from None
    names = set(table.schema_arrow.names)
    wanted = [
        c
        for c in (
            "event_timestamp", "event_name", "user_pseudo_id", "event_params", "device",
            "geo", "collected_traffic_source", "ecommerce",
        )
        if c in names
    ]  # fmt: skip
    for column in ("event_timestamp", "event_name", "user_pseudo_id"):
        if column not in names:
            raise ImportInvalid(
                label, None, column, "not a GA4 events_YYYYMMDD table: the column is missing"
            )
    n = 0
    for batch in table.iter_batches(batch_size=BATCH, columns=wanted):
        for row in batch.to_pylist():
            n += 1
            yield n, row


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

    return Source("ga4", read)
