"""Source records -> the site's event rows, by the rules live hits follow.

Every source parser yields Records: one page view or custom event with its source's
visitor (and maybe session) id. Here they get what the ingest pipeline gives a hit: the
site-local day, a visitor id valid for that day (a keyed hash of the source's id with a
key made for this import and never stored, so the source's ids can't be recovered),
sessions that end after 30 minutes of inactivity and at the site's midnight, and the
visit attributes of each session's first event (entry page, referrer, source, channel,
UTM, device, geo) copied onto its every event, enriched by the ingest code itself."""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from app.ingest.enrich import Agent, Page, cached_agent_parser, parse_page, referrer_host
from app.ingest.identity import SESSION_TIMEOUT_US, day_number
from app.ingest.referrers import classify
from app.storage.events import EVENT_SCHEMA
from app.storage.imports import MAX_SESSIONS, SEQ_BITS

# The columns a visit's first event gives all its events (_visit_attrs' order).
VISIT_COLUMNS = (
    "entry_page", "referrer", "source", "channel", "utm_source", "utm_medium",
    "utm_campaign", "utm_content", "utm_term", "device", "browser", "browser_version", "os",
    "os_version", "screen", "country", "region", "city",
)  # fmt: skip


class Record(NamedTuple):
    """One event as a source describes it (what it lacks stays None)."""

    ts_us: int  # UTC, microseconds since the epoch
    visitor: str  # the source's visitor id: hashed with the import's key, never stored
    session: str | None  # the source's visit id; None: sessions by 30 minutes of inactivity
    name: str  # "pageview" or a custom event's name
    url: str  # the page's URL: http(s)://host/path?query
    referrer: str | None = None  # a URL or a bare host
    user_agent: str | None = None  # parsed as live hits' are (bots then skipped)
    agent: Agent | None = None  # device, browser, OS as the source named them
    screen: str | None = None  # Plausible's screen class
    country: str | None = None
    region: str | None = None
    city: str | None = None
    props: tuple[tuple[str, str], ...] = ()
    revenue: Decimal | None = None
    currency: str | None = None


class Built(NamedTuple):
    table: pa.Table  # EVENT_SCHEMA, sorted by visitor, session and time
    day_events: dict[date, int]
    sessions: int


class LocalDays:
    """The site-local day of a UTC time, with the last day's bounds cached (sources are
    mostly in time order)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._lo = self._hi = 0
        self._day = date(1970, 1, 1)

    def of(self, ts_us: int) -> date:
        if not self._lo <= ts_us < self._hi:
            local = datetime.fromtimestamp(ts_us / 1e6, UTC).astimezone(self.zone)
            day = local.date()
            nxt = day + timedelta(days=1)
            start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.zone)
            self._lo, self._hi = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
            self._day = day
        return self._day


def _visitor_hash(key: bytes) -> Callable[[str, date], int]:
    def visitor(source_id: str, day: date) -> int:
        material = f"{source_id}\x00{day.isoformat()}".encode()
        digest = hashlib.blake2b(material, digest_size=8, key=key).digest()
        return int.from_bytes(digest, "big", signed=True)

    return visitor


def _visit_attrs(rec: Record, agent: Agent | None, pathname: str) -> tuple[Any, ...]:
    """The visit attributes of a session that starts with rec (VISIT_COLUMNS' order)."""
    page = parse_page(rec.url, False)
    host = page.hostname if page else None
    src = classify(
        referrer_host(rec.referrer),
        host,
        page.utm_source if page else None,
        page.utm_medium if page else None,
        page.utm_campaign if page else None,
        page.ref if page else None,
        page.click_id if page else None,
    )
    utm = (
        (page.utm_source, page.utm_medium, page.utm_campaign, page.utm_content, page.utm_term)
        if page
        else (None,) * 5
    )
    agent_cols = agent[1:] if agent else (None,) * 5
    return (
        pathname,
        src.referrer,
        src.source,
        src.channel,
        *utm,
        *agent_cols,
        rec.screen,
        rec.country,
        rec.region,
        rec.city,
    )


_EVENT = 3  # Record's fields from `name` on: what the rows' columns come from


class Collected:
    """Records as compact columns: each one's visitor (hashed), source session, time, day
    and the id of its "kind" (every other field: exports repeat the same pages, referrers
    and agents, so URLs, user agents and visit attributes are parsed once per kind)."""

    def __init__(self, records: Iterable[Record], zone: ZoneInfo, key: bytes) -> None:
        local = LocalDays(zone)
        visitor = _visitor_hash(key)
        kind_ids: dict[tuple[Any, ...], int] = {}
        hashed: dict[tuple[str, int], int] = {}
        self.kinds: list[Record] = []
        # Machine integers (8 bytes a value, not a Python int's 36): 1M records in 36 MB.
        self.vids = array("q")
        self.sessions: list[str] = []
        self.times = array("q")
        self.daynos = array("q")
        self.kind_of = array("q")
        for rec in records:
            day = local.of(rec.ts_us)
            fields = rec[_EVENT:]
            kid = kind_ids.get(fields)
            if kid is None:
                kid = kind_ids[fields] = len(self.kinds)
                self.kinds.append(rec)
            dayno = day_number(day)
            vid = hashed.get((rec.visitor, dayno))
            if vid is None:
                if len(hashed) >= 65_536:  # a visitor's hits are close in time: forget
                    hashed.clear()  # the old ones rather than hold every visitor-day
                vid = hashed[(rec.visitor, dayno)] = visitor(rec.visitor, day)
            self.vids.append(vid)
            self.sessions.append(rec.session or "")
            self.times.append(rec.ts_us)
            self.daynos.append(dayno)
            self.kind_of.append(kid)

    def __len__(self) -> int:
        return len(self.times)

    def days(self) -> set[date]:
        return {_EPOCH + timedelta(days=n) for n in set(self.daynos)}


def build_rows(
    records: Iterable[Record] | Collected,
    site_id: str,
    zone: ZoneInfo,
    seq: int,
    key: bytes,
    skipped: Counter[str],
    keep_day: Callable[[date], bool] = lambda d: True,
) -> Built:
    """The event rows of these records as an Arrow table (bots and unusable URLs are
    counted in `skipped`, and so are records on days keep_day refuses): kinds parsed once,
    the sort in Arrow, each column one take() from the kinds' values."""
    parse_ua = cached_agent_parser(4096)
    got = records if isinstance(records, Collected) else Collected(records, zone, key)
    kinds, vids, sessions, times = got.kinds, got.vids, got.sessions, got.times
    daynos, kind_of = got.daynos, got.kind_of
    refused = {n for n in set(daynos) if not keep_day(_EPOCH + timedelta(days=n))}
    # Each kind once: its page, agent, and why it is skipped (if it is).
    pages: list[Page | None] = []
    agents: list[Agent | None] = []
    bad: list[str | None] = []
    for rec in kinds:
        page = parse_page(rec.url, False)
        agent = rec.agent
        reason = None
        if page is None:
            reason = "not an http(s) page URL"
        elif rec.user_agent:
            parsed = parse_ua(rec.user_agent)
            if parsed.bot:
                reason = "bot user agent"
            agent = agent or parsed
        pages.append(page)
        agents.append(agent)
        bad.append(reason)
    order = _sorted_kept(got, bad, refused, skipped)
    # Sessions: a new one when the visitor or the source's session changes, or (without
    # a source session) after 30 idle minutes; the visit's attributes are its first's.
    session_of = array("q")  # per kept row, in order: its session's number (1, 2, ..)
    visit_kind = array("q")  # per session: the kind of its first event
    n = 0
    last_vid, last_sess, last_ts = 0, "", 0
    for i in memoryview(order.buffers()[1]).cast("q") if len(order) else ():
        vid, sess, ts = vids[i], sessions[i], times[i]
        if (
            n == 0
            or vid != last_vid
            or sess != last_sess
            or (not sess and ts - last_ts > SESSION_TIMEOUT_US)
        ):
            n += 1
            if n > MAX_SESSIONS:
                raise ValueError("too many sessions in one import")
            visit_kind.append(kind_of[i])
        session_of.append(n)
        last_vid, last_sess, last_ts = vid, sess, ts
    table = _table(site_id, seq, order, got, session_of, visit_kind, pages, agents)
    counts = pc.value_counts(table.column("day").cast(pa.int32()))
    day_events = {
        _EPOCH + timedelta(days=day): count
        for day, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
    }
    return Built(table, day_events, n)


_EPOCH = date(1970, 1, 1)


def _int64(values: array[int]) -> pa.Array:
    """An int64 Arrow array over an array('q')'s buffer (no copy, no Python ints)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _sorted_kept(
    got: Collected, bad: list[str | None], refused: set[int], skipped: Counter[str]
) -> pa.Array:
    """The indices of the records kept, by visitor, session, time (then input order)."""
    vids, sessions, times, kind_of = got.vids, got.sessions, got.times, got.kind_of
    if refused:
        on_refused = [d in refused for d in got.daynos]
        skipped["day already has native data (--overlap skip)"] += sum(on_refused)
        keep = [not r and bad[k] is None for r, k in zip(on_refused, kind_of, strict=True)]
        kinds = Counter(k for r, k in zip(on_refused, kind_of, strict=True) if not r)
    else:
        keep = [bad[k] is None for k in kind_of]
        kinds = Counter(kind_of)
    for k, count in kinds.items():
        reason = bad[k]
        if reason is not None:
            skipped[reason] += count
    keys = pa.table(
        {
            "vid": _int64(vids),
            "sess": pa.array(sessions, pa.string()),
            "ts": _int64(times),
            "i": pa.array(range(len(vids)), pa.int64()),
        }
    ).filter(pa.array(keep, pa.bool_()))
    order = pc.sort_indices(
        keys, sort_keys=[("vid", "ascending"), ("sess", "ascending"), ("ts", "ascending"),
                         ("i", "ascending")]
    )  # fmt: skip
    return keys.column("i").take(order).combine_chunks()


def _table(
    site_id: str,
    seq: int,
    order: pa.Array,
    got: Collected,
    session_of: array[int],
    visit_kind: array[int],
    pages: list[Page | None],
    agents: list[Agent | None],
) -> pa.Table:
    """EVENT_SCHEMA's columns for the rows in `order`: event columns from each row's kind,
    visit columns from its session's first kind; strings dictionary-encoded (an index per
    row into each kind's values: DuckDB reads them as VARCHAR)."""
    kinds = got.kinds
    rows = len(order)
    event_kind = _int64(got.kind_of).take(order)
    sessions = _int64(session_of)
    visit_of = _int64(visit_kind).take(pc.subtract(sessions, 1))
    attrs: list[tuple[Any, ...] | None] = [None] * len(kinds)
    for k in set(visit_kind):
        page = pages[k]
        assert page is not None
        attrs[k] = _visit_attrs(kinds[k], agents[k], page.pathname)
    columns: dict[str, pa.Array] = {
        "site_id": _repeat(site_id, rows),
        "ts": _int64(got.times).take(order).cast(pa.timestamp("us")),
        "day": _int64(got.daynos).take(order).cast(pa.int32()).cast(pa.date32()),
        "visitor_id": _int64(got.vids).take(order),
        "session_id": pc.subtract(pa.scalar(-(seq << SEQ_BITS), pa.int64()), sessions),
        "interactive": pa.array([True], pa.bool_()).take(pa.array([0] * rows, pa.int8())),
    }
    per_kind: dict[str, list[Any]] = {
        "name": [r.name for r in kinds],
        "hostname": [p.hostname if p else None for p in pages],
        "pathname": [p.pathname if p else None for p in pages],
        "props": [list(r.props) if r.props else None for r in kinds],
        "revenue": [r.revenue for r in kinds],
        "currency": [r.currency if r.revenue is not None else None for r in kinds],
    }
    for j, name in enumerate(VISIT_COLUMNS):
        per_kind[name] = [a[j] if a is not None else None for a in attrs]
    for name, values in per_kind.items():
        rows_of = visit_of if name in VISIT_COLUMNS else event_kind
        kind_type = EVENT_SCHEMA.field(name).type
        if kind_type == pa.string():
            columns[name] = _Encoded(values).take(rows_of)
        else:
            columns[name] = pa.array(values, kind_type).take(rows_of)
    names = EVENT_SCHEMA.names
    arrays = [
        columns[f.name] if f.name in columns else pa.nulls(rows, f.type) for f in EVENT_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _repeat(value: str, rows: int) -> pa.Array:
    """`value` on every row, as a dictionary of one string."""
    indices = pa.array([0], pa.int32()).take(pa.array([0] * rows, pa.int8()))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


class _Encoded:
    """Each kind's string as an index into the distinct strings (None: a null index);
    take(rows) gives the rows' dictionary array without copying a string."""

    def __init__(self, values: list[str | None]) -> None:
        positions: dict[str, int] = {}
        index = [None if v is None else positions.setdefault(v, len(positions)) for v in values]
        self.index = pa.array(index, pa.int32())
        self.dictionary = pa.array(list(positions), pa.string())

    def take(self, rows: pa.Array) -> pa.Array:
        return pa.DictionaryArray.from_arrays(self.index.take(rows), self.dictionary)
