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

from app.imports.build import Batch, Event, Place, Record
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
BATCH = 16_384
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


def _revenue(commerce: dict[str, Any], params: dict[str, Any]) -> tuple[Decimal | None, str | None]:
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
    geo = row.get("geo") or {}
    _, country, _, city = _place(geo.get("country"), geo.get("city"))
    name, props, revenue, currency = _event(name, params, row.get("ecommerce") or {})
    return Record(
        ts_us=ts,
        visitor=str(user),
        session=_text(session) if session is not None else None,
        name=name,
        url=_url(location, row.get("collected_traffic_source") or {}),
        referrer=_referrer(params.get("page_referrer"), params.get("ignore_referrer")),
        agent=_agent(row.get("device") or {}),
        country=country,
        city=city,
        props=props,
        revenue=revenue,
        currency=currency,
    )


def _referrer(referrer: Any, ignore: Any) -> str | None:
    if ignore in ("true", True):
        return None
    return referrer if isinstance(referrer, str) and referrer else None


def _place(country_name: Any, city: Any) -> Place:
    """geo's country name and city -> (screen, country code, region, city)."""
    country = None
    if isinstance(country_name, str):
        country = CODES.get(country_name.strip().lower())
        if country is None and len(country_name) == 2 and country_name.isalpha():
            country = country_name.upper()
    good_city = city if isinstance(city, str) and city and city != "(not set)" else None
    return (None, country, None, good_city)


def _event(name: str, params: dict[str, Any], commerce: dict[str, Any]) -> Event:
    """An event's name, props (its parameters but GA4's own) and revenue (a purchase's)."""
    revenue, currency = (None, None)
    if name == "purchase":
        revenue, currency = _revenue(commerce, params)
    props = tuple(
        (key, _text(value)[:MAX_PROP])
        for key, value in sorted(params.items())
        if key not in INTERNAL_PARAMS
    )
    return ("pageview" if name == "page_view" else name, props, revenue, currency)


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


# The parameters a row's own columns are read from (the rest but INTERNAL_PARAMS: props).
ROW_PARAMS = (
    "page_location", "page_referrer", "ga_session_id", "ignore_referrer", "currency", "value"
)  # fmt: skip
# The nested fields read, by column: a name or a path into a record.
SUBFIELDS: dict[str, tuple[str | tuple[str, str], ...]] = {
    "device": ("category", "operating_system", "operating_system_version",
               ("web_info", "browser"), ("web_info", "browser_version")),
    "geo": ("country", "city"),
    "collected_traffic_source": tuple(field for _, field in TRAFFIC),
    "ecommerce": ("purchase_revenue", "purchase_revenue_in_usd"),
}  # fmt: skip


def _parquet_batches(path: Path, label: str, skipped: Counter[str]) -> Iterator[Batch]:
    """A Parquet export's events, a batch at a time and column by column (GA4's nested
    records as a Python dict per row would cost more than the rest of the import): each
    distinct event (name, page, referrer, props, device, place, campaign, revenue) goes
    through record() once, as a row of the JSON export does."""
    import pyarrow as pa
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
    wanted = ["event_timestamp", "event_name", "user_pseudo_id", "event_params"]
    wanted = [c for c in [*wanted, *SUBFIELDS] if c in schema.names]
    pool = pa.default_memory_pool()
    n = 0
    try:
        # One thread: the reader's own buffers come from Arrow's C++ default pool
        # (mimalloc, whatever pool an import sets: run._system_pool), whose huge pages
        # each thread touches apart (the whole read: 22 MB resident with threads, 12
        # without, for 1.5 MB allocated; 0.8 s against 0.9 s for GA4's 1M rows).
        for batch in table.iter_batches(batch_size=BATCH, columns=wanted, use_threads=False):
            yield _batch(batch, n, label, skipped)
            n += batch.num_rows
            del batch
            pool.release_unused()  # what a batch freed, back to the OS batch after batch
    except pa.ArrowException as exc:
        raise ImportInvalid(label, n + 1, None, f"unreadable Parquet data ({exc})") from None


def _batch(batch: Any, before: int, label: str, skipped: Counter[str]) -> Batch:
    """One record batch's events (`before`: the file's rows before it, for errors' lines)."""
    import pyarrow as pa

    size = batch.num_rows
    names = batch.column("event_name").to_pylist()
    stamps = batch.column("event_timestamp")
    times = stamps.to_pylist()
    if not pa.types.is_integer(stamps.type):  # a string column, as JSON exports write INT64
        for i, value in enumerate(times):
            try:
                times[i] = _int(value, "event_timestamp") if value is not None else None
            except Bad as bad:
                raise ImportInvalid(label, before + i + 1, bad.column, bad.problem) from None
    users = batch.column("user_pseudo_id").to_pylist()
    try:
        params, props = _parquet_params(batch, size)
    except Bad as bad:
        line = before + bad.row + 1 if isinstance(bad, BadRow) else None
        raise ImportInvalid(label, line, bad.column, bad.problem) from None
    location, referrer, session_ids, ignore, currency, value = params
    device = _subfields(batch, "device", size)
    geo = _subfields(batch, "geo", size)
    traffic = _subfields(batch, "collected_traffic_source", size)
    commerce = _subfields(batch, "ecommerce", size)
    out = Batch([], [], [], [], [], [], [], [])
    urls: dict[tuple[str, tuple[Any, ...]], str] = {}
    agents: dict[tuple[Any, ...], Agent] = {}
    places: dict[tuple[Any, ...], Place] = {}
    events: dict[tuple[Any, ...], Event] = {}
    fields = [field for _, field in TRAFFIC]
    skipped_events = no_page = 0
    for i in range(size):
        name = names[i]
        if not isinstance(name, str) or not name:
            raise ImportInvalid(label, before + i + 1, "event_name", "a value is required")
        if name in SKIPPED_EVENTS:
            skipped_events += 1
            continue
        ts, user = times[i], users[i]
        if ts is None or not user:
            column = "event_timestamp" if ts is None else "user_pseudo_id"
            raise ImportInvalid(label, before + i + 1, column, "a value is required")
        page = location[i]
        if not isinstance(page, str) or not page.startswith(("http://", "https://")):
            no_page += 1
            continue
        campaign = traffic[i]
        url = urls.get((page, campaign))
        if url is None:
            url = urls[(page, campaign)] = _url(page, dict(zip(fields, campaign, strict=True)))
        agent = agents.get(device[i])
        if agent is None:
            agent = agents[device[i]] = _parse_agent(*device[i])
        place = places.get(geo[i])
        if place is None:
            place = places[geo[i]] = _place(*geo[i])
        purchase = name == "purchase"
        key = (name, props[i], (currency[i], value[i], commerce[i]) if purchase else None)
        event = events.get(key)
        if event is None:
            own = {"currency": currency[i], "value": value[i], **dict(props[i])}
            bought = dict(zip(SUBFIELDS["ecommerce"], commerce[i], strict=True))
            try:
                event = events[key] = _event(name, own, bought)  # type: ignore[arg-type]
            except Bad as bad:
                raise ImportInvalid(label, before + i + 1, bad.column, bad.problem) from None
        sid = session_ids[i]
        out.times.append(ts)
        out.visitors.append(user if type(user) is str else str(user))
        out.sessions.append(_text(sid) if sid is not None else None)
        out.urls.append(url)
        out.referrers.append(_referrer(referrer[i], ignore[i]))
        out.agents.append(agent)
        out.places.append(place)
        out.events.append(event)
    if skipped_events:
        skipped["GA4's session_start, first_visit and user_engagement (not actions)"] += (
            skipped_events
        )
    if no_page:
        skipped["no page_location (not a web page's event)"] += no_page
    return out


class BadRow(Bad):
    """A bad value of a batch's row (its index in the batch)."""

    def __init__(self, row: int, column: str, problem: str) -> None:
        super().__init__(column, problem)
        self.row = row


def _subfields(batch: Any, column: str, size: int) -> list[tuple[Any, ...]]:
    """Each row's nested fields of a record column (SUBFIELDS' order; None where the
    export lacks a field or the column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fields = SUBFIELDS[column]
    if column not in batch.schema.names:
        return [(None,) * len(fields)] * size
    array = batch.column(column)
    values: list[list[Any]] = []
    for field in fields:
        try:
            values.append(
                pc.struct_field(
                    array, [field] if isinstance(field, str) else list(field)
                ).to_pylist()
            )
        except (pa.ArrowException, KeyError, TypeError):
            values.append([None] * size)  # a field this export lacks
    return list(zip(*values, strict=True))


def _parquet_params(batch: Any, size: int) -> tuple[list[list[Any]], list[tuple[Any, ...]]]:
    """event_params column-wise: for each of ROW_PARAMS, every row's value (a key's first
    value set of the four types; the last such parameter of a row wins, as in a dict), and
    every row's other parameters but INTERNAL_PARAMS as sorted (key, value) pairs."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "event_params" not in batch.schema.names:
        return [[None] * size for _ in ROW_PARAMS], [()] * size
    column = batch.column("event_params")
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise Bad("event_params", "each parameter is {key, value: {...}}")
    flat = column.flatten()  # the rows' parameters (a slice's and a null row's respected)
    parents = pc.list_parent_indices(column)
    try:
        keys = flat.field("key")
        value = flat.field("value")
    except KeyError:
        raise Bad("event_params", "each parameter is {key, value: {...}}") from None
    if not pa.types.is_string(keys.type) or not pa.types.is_struct(value.type):
        raise Bad("event_params", "each parameter is {key, value: {...}}")
    if keys.null_count:
        first = pc.index(keys.is_null(), True).as_py()
        raise BadRow(parents[first].as_py(), "event_params", "each parameter has a key")
    kinds = [value.field(k) for k in ("string_value", "int_value", "double_value", "float_value")
             if value.type.get_field_index(k) >= 0]  # fmt: skip

    def values_of(mask: Any) -> tuple[list[int], list[Any], list[Any]]:
        """The masked parameters' rows, keys and values (None: no value set)."""
        at = pc.indices_nonzero(mask)
        rows = parents.take(at).to_pylist()
        picked: list[Any] = [None] * len(rows)
        for values in (k.take(at).to_pylist() for k in kinds):
            picked = [p if p is not None else v for p, v in zip(picked, values, strict=True)]
        return rows, keys.take(at).to_pylist(), picked

    columns: list[list[Any]] = []
    for name in ROW_PARAMS:
        out: list[Any] = [None] * size
        rows, _, picked = values_of(pc.equal(keys, name))
        for row, v in zip(rows, picked, strict=True):
            if v is not None:
                out[row] = v
        columns.append(out)
    rows, names, picked = values_of(pc.invert(pc.is_in(keys, pa.array(sorted(INTERNAL_PARAMS)))))
    own: dict[int, dict[str, Any]] = {}
    for row, key, v in zip(rows, names, picked, strict=True):
        if v is not None:
            own.setdefault(row, {})[key] = v
    props: list[tuple[Any, ...]] = [()] * size
    for row, found in own.items():
        props[row] = tuple(sorted(found.items()))
    return columns, props


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
    def read(paths: list[Path], skipped: Counter[str]) -> Iterator[Record | Batch]:
        for path in paths:
            label = display_name(path)
            if _is_parquet(path):
                yield from _parquet_batches(path, label, skipped)
                continue
            for line, row in _json_rows(path, label):
                try:
                    rec = record(row, skipped)
                except Bad as bad:
                    raise ImportInvalid(label, line, bad.column, bad.problem) from None
                if rec is not None:
                    yield rec

    return Source("ga4", read, total=_count_rows)
