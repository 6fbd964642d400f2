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
from collections.abc import Callable, Iterable, Iterator
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


class Batch(NamedTuple):
    """Records column-wise, as a columnar source (GA4's Parquet) reads them: row i is an
    event at times[i] of visitors[i] in sessions[i], on the page urls[i] from referrers[i],
    with agents[i] (device, browser, OS), places[i] (screen, country, region, city) and
    events[i] (name, props, revenue, currency): the parts a Record has."""

    times: list[int]
    visitors: list[str]
    sessions: list[str | None]
    urls: list[str]
    referrers: list[str | None]
    agents: list[Agent | None]
    places: list[tuple[str | None, str | None, str | None, str | None]]
    events: list[tuple[str, tuple[tuple[str, str], ...], Decimal | None, str | None]]

    def records(self) -> Iterator[Record]:
        """Row by row, as a row-wise source would have yielded them."""
        for ts, visitor, session, url, referrer, agent, place, event in zip(*self, strict=True):
            name, props, revenue, currency = event
            screen, country, region, city = place
            yield Record(
                ts, visitor, session, name, url, referrer, None, agent, screen, country,
                region, city, props, revenue, currency,
            )  # fmt: skip


class Built:
    """The import's events, sorted by day, visitor, session and time, with each row's
    session: tables() builds them as Arrow tables a run of days at a time (no table of all
    of them is held)."""

    def __init__(
        self,
        site_id: str,
        seq: int,
        got: Collected,
        order: pa.Array,
        session_of: array[int],
        first_row: array[int],
        pages: list[Page | None],
        agents: list[Agent | None],
    ) -> None:
        self._site_id, self._seq, self._got = site_id, seq, got
        self._order, self._session_of, self._first_row = order, session_of, first_row
        self._pages, self._agents = pages, agents
        self.sessions = len(first_row)
        self.rows = len(order)
        counts = pc.value_counts(_int32(got.daynos).take(order)) if len(order) else None
        self.day_events: dict[date, int] = (
            {
                _EPOCH + timedelta(days=day): count
                for day, count in zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                )
            }
            if counts is not None
            else {}
        )

    def tables(self, max_events: int) -> Iterator[tuple[list[date], pa.Table]]:
        """(days, their events) in runs of whole days of at most max_events (a day at
        least), in day order; each run's rows in time order (ties in day, visitor,
        session order), as the scratch store keeps them."""
        start = 0
        days: list[date] = []
        events = 0
        for day in sorted(self.day_events):
            if days and events + self.day_events[day] > max_events:
                yield days, self._slice(start, start + events, by_time=True)
                start, days, events = start + events, [], 0
            days.append(day)
            events += self.day_events[day]
        if days:
            yield days, self._slice(start, start + events, by_time=True)

    @property
    def table(self) -> pa.Table:
        """All of the events as one table, by day, visitor, session and time (small
        imports and tests)."""
        return self._slice(0, self.rows)

    def _slice(self, start: int, end: int, *, by_time: bool = False) -> pa.Table:
        order = self._order.slice(start, end - start)
        sessions = _int64(self._session_of).slice(start, end - start)
        if by_time:  # the rows put in time order before the table is built, not after:
            # a sorted copy of a built table doubled a run's Arrow memory (200k events:
            # 67 MB, the import's peak). sort_indices is stable: ties keep their order.
            by_ts = pc.sort_indices(_int64(self._got.times).take(order))
            order, sessions = order.take(by_ts), sessions.take(by_ts)
        return _table(
            self._site_id,
            self._seq,
            order,
            self._got,
            sessions,
            self._first_row,
            self._pages,
            self._agents,
        )


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

    def bounds(self) -> tuple[int, int]:
        """The UTC microseconds [start, end) of the last day of()."""
        return self._lo, self._hi


def _visitor_hash(key: bytes) -> Callable[[str, date], int]:
    def visitor(source_id: str, day: date) -> int:
        material = f"{source_id}\x00{day.isoformat()}".encode()
        digest = hashlib.blake2b(material, digest_size=8, key=key).digest()
        return int.from_bytes(digest, "big", signed=True)

    return visitor


# VISIT_COLUMNS by where they come from: the first page and referrer, the agent, the place.
SOURCE_COLUMNS = VISIT_COLUMNS[1:9]
AGENT_COLUMNS = VISIT_COLUMNS[9:14]
PLACE_COLUMNS = VISIT_COLUMNS[14:]
Place = tuple[str | None, str | None, str | None, str | None]  # screen, country, region, city
Event = tuple[str, tuple[tuple[str, str], ...], Decimal | None, str | None]


def _source_attrs(page: Page | None, referrer: str | None) -> tuple[Any, ...]:
    """A visit's referrer, source, channel and UTM values (SOURCE_COLUMNS' order), from its
    first page and referrer, as live hits get them."""
    src = classify(
        referrer_host(referrer),
        page.hostname if page else None,
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
    return (src.referrer, src.source, src.channel, *utm)


class _Parts:
    """The distinct values of one part of the records (pages, agents...), numbered."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def add(self, value: Any) -> int:
        n = self.ids[value] = len(self.values)
        self.values.append(value)
        return n


_CHUNK = 4096  # records gathered before they are added column-wise


class Collected:
    """Records as compact columns: each one's visitor (hashed), source session (a number
    per distinct id, 0 for none), time, day, and the number of each of its parts: page URL,
    referrer, agent (user agent, source's Agent), place, event (name, props, revenue,
    currency). Exports repeat their pages, referrers and agents: each distinct one is
    parsed once, and no row keeps a Python object of its own."""

    def __init__(self, records: Iterable[Record | Batch], zone: ZoneInfo, key: bytes) -> None:
        self._local = LocalDays(zone)
        self._visitor = _visitor_hash(key)
        self._hashed: dict[tuple[str, int], int] = {}
        self._session_ids: dict[str, int] = {"": 0}
        self.pages, self.referrers, self.agents = _Parts(), _Parts(), _Parts()
        self.places, self.events = _Parts(), _Parts()
        # Machine integers (8 or 4 bytes a value, not a Python int's 36).
        self.vids = array("q")
        self.sessions = array("q")
        self.times = array("q")
        self.daynos = array("i")
        self.page_of, self.referrer_of, self.agent_of = array("i"), array("i"), array("i")
        self.place_of, self.event_of = array("i"), array("i")
        chunk: list[Record] = []
        for rec in records:
            if isinstance(rec, Batch):
                self._add_records(chunk)  # the records before it first: input order holds
                chunk = []
                self._add_rows(
                    rec.times, rec.visitors, rec.sessions, rec.urls, rec.referrers,
                    [(None, a) for a in rec.agents], rec.places, rec.events,
                )  # fmt: skip
                continue
            chunk.append(rec)
            if len(chunk) == _CHUNK:
                self._add_records(chunk)
                chunk = []
        self._add_records(chunk)
        del self._hashed, self._session_ids

    def _add_records(self, records: list[Record]) -> None:
        if not records:
            return
        (ts, visitor, session, name, url, referrer, ua, agent, screen, country, region, city,
         props, revenue, currency) = zip(*records, strict=True)  # fmt: skip
        self._add_rows(
            ts, visitor, session, url, referrer, zip(ua, agent, strict=True),
            zip(screen, country, region, city, strict=True),
            zip(name, props, revenue, currency, strict=True),
        )  # fmt: skip

    def _add_rows(
        self,
        times: Iterable[int],
        visitors: Iterable[str],
        sessions: Iterable[str | None],
        urls: Iterable[str],
        referrers_in: Iterable[str | None],
        agents: Iterable[tuple[str | None, Agent | None]],
        places: Iterable[Place],
        events: Iterable[Event],
    ) -> None:
        local, hashed, session_ids = self._local, self._hashed, self._session_ids
        pages, referrers, agent_parts = self.pages, self.referrers, self.agents
        places_, events_ = self.places, self.events
        page_ids, referrer_ids, agent_ids = pages.ids, referrers.ids, agent_parts.ids
        place_ids, event_ids = places_.ids, events_.ids
        vids, sids, stamps, daynos = self.vids, self.sessions, self.times, self.daynos
        page_of, referrer_of, agent_of = self.page_of, self.referrer_of, self.agent_of
        place_of, event_of = self.place_of, self.event_of
        lo = hi = dayno = 0
        day = _EPOCH
        for ts, visitor, session, url, ref, agent, place, event in zip(
            times, visitors, sessions, urls, referrers_in, agents, places, events, strict=True
        ):
            if not lo <= ts < hi:
                day = local.of(ts)
                dayno = day_number(day)
                lo, hi = local.bounds()
            vid = hashed.get((visitor, dayno))
            if vid is None:
                if len(hashed) >= 65_536:  # a visitor's hits are close in time: forget
                    hashed.clear()  # the old ones rather than hold every visitor-day
                vid = hashed[(visitor, dayno)] = self._visitor(visitor, day)
            sid = session_ids.get(session or "")
            if sid is None:
                sid = session_ids[session or ""] = len(session_ids)
            vids.append(vid)
            sids.append(sid)
            stamps.append(ts)
            daynos.append(dayno)
            n = page_ids.get(url)
            page_of.append(pages.add(url) if n is None else n)
            n = referrer_ids.get(ref)
            referrer_of.append(referrers.add(ref) if n is None else n)
            n = agent_ids.get(agent)
            agent_of.append(agent_parts.add(agent) if n is None else n)
            n = place_ids.get(place)
            place_of.append(places_.add(place) if n is None else n)
            n = event_ids.get(event)
            event_of.append(events_.add(event) if n is None else n)

    def __len__(self) -> int:
        return len(self.times)

    def days(self) -> set[date]:
        return {_EPOCH + timedelta(days=n) for n in set(self.daynos)}


def build_rows(
    records: Iterable[Record | Batch] | Collected,
    site_id: str,
    zone: ZoneInfo,
    seq: int,
    key: bytes,
    skipped: Counter[str],
    keep_day: Callable[[date], bool] = lambda d: True,
) -> Built:
    """The event rows of these records (bots and unusable URLs are counted in `skipped`,
    and so are records on days keep_day refuses): each distinct page and agent parsed
    once, the sort and the sessions here, the Arrow tables built by the Built a run of
    days at a time (each column one take() from its part's values)."""
    got = records if isinstance(records, Collected) else Collected(records, zone, key)
    pages = [parse_page(url, False) for url in got.pages.values]
    parse_ua = cached_agent_parser(4096)
    agents: list[Agent | None] = []
    bots: list[bool] = []
    for user_agent, agent in got.agents.values:
        parsed = parse_ua(user_agent) if user_agent else None
        bots.append(bool(parsed and parsed.bot))
        agents.append(agent or parsed)
    refused = sorted(n for n in set(got.daynos) if not keep_day(_EPOCH + timedelta(days=n)))
    order = _sorted_kept(got, [p is None for p in pages], bots, refused, skipped)
    # Sessions: a new one when the visitor or the source's session changes, or (without
    # a source session) after 30 idle minutes; the visit's attributes are its first's.
    session_of = array("q")  # per kept row, in order: its session's number (1, 2, ..)
    first_row = array("q")  # per session: the record its first event is
    vids, sessions, times = got.vids, got.sessions, got.times
    n = 0
    last_vid, last_sess, last_ts = 0, 0, 0
    for i in memoryview(order.buffers()[1]).cast("q") if len(order) else ():
        vid, sess, ts = vids[i], sessions[i], times[i]  # sess 0: none
        if (
            n == 0
            or vid != last_vid
            or sess != last_sess
            or (not sess and ts - last_ts > SESSION_TIMEOUT_US)
        ):
            n += 1
            if n > MAX_SESSIONS:
                raise ValueError("too many sessions in one import")
            first_row.append(i)
        session_of.append(n)
        last_vid, last_sess, last_ts = vid, sess, ts
    return Built(site_id, seq, got, order, session_of, first_row, pages, agents)


_EPOCH = date(1970, 1, 1)


def _int64(values: array[int]) -> pa.Array:
    """An int64 Arrow array over an array('q')'s buffer (no copy, no Python ints)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _int32(values: array[int]) -> pa.Array:
    """An int32 Arrow array over an array('i')'s buffer."""
    assert values.itemsize == 4
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def _sorted_kept(
    got: Collected,
    bad_page: list[bool],
    bot: list[bool],
    refused: list[int],
    skipped: Counter[str],
) -> pa.Array:
    """The indices of the records kept, by day, visitor, session, time (then input order)."""
    no_page = pa.array(bad_page, pa.bool_()).take(_int32(got.page_of))
    is_bot = pc.and_not(pa.array(bot, pa.bool_()).take(_int32(got.agent_of)), no_page)
    on_refused = pc.is_in(_int32(got.daynos), pa.array(refused, pa.int32()))
    for reason, rows in (
        ("day already has native data (--overlap skip)", on_refused),
        ("not an http(s) page URL", pc.and_not(no_page, on_refused)),
        ("bot user agent", pc.and_not(is_bot, on_refused)),
    ):
        if count := pc.sum(rows).as_py():
            skipped[reason] += count
    keep = pc.invert(pc.or_(pc.or_(no_page, is_bot), on_refused))
    keys = pa.table(
        {
            "day": _int32(got.daynos),
            "vid": _int64(got.vids),
            "sess": _int64(got.sessions),
            "ts": _int64(got.times),
            "i": pa.array(range(len(got)), pa.int64()),
        }
    ).filter(keep)
    order = pc.sort_indices(
        keys, sort_keys=[("day", "ascending"), ("vid", "ascending"), ("sess", "ascending"),
                         ("ts", "ascending"), ("i", "ascending")]
    )  # fmt: skip
    return keys.column("i").take(order).combine_chunks()


def _table(
    site_id: str,
    seq: int,
    order: pa.Array,
    got: Collected,
    sessions: pa.Array,
    first_row: array[int],
    pages: list[Page | None],
    agents: list[Agent | None],
) -> pa.Table:
    """EVENT_SCHEMA's columns for the rows in `order`: event columns from each row's parts,
    visit columns from its session's first row's; strings dictionary-encoded (an index per
    row into a part's values: DuckDB reads them as VARCHAR)."""
    rows = len(order)
    if not rows:
        return EVENT_SCHEMA.empty_table()
    # The sessions here are numbered base+1..last (a run of days holds whole sessions).
    bounds = pc.min_max(sessions)
    base, last = bounds["min"].as_py() - 1, bounds["max"].as_py()
    visits = _int64(first_row).slice(base, last - base)
    in_run = pc.subtract(sessions, base + 1)  # per row: its session, from 0 in this run
    visit_row = visits.take(in_run)  # per row: its visit's first record
    columns: dict[str, pa.Array] = {
        "site_id": _repeat(site_id, rows),
        "ts": _int64(got.times).take(order).cast(pa.timestamp("us")),
        "day": _int32(got.daynos).take(order).cast(pa.date32()),
        "visitor_id": _int64(got.vids).take(order),
        "session_id": pc.subtract(pa.scalar(-(seq << SEQ_BITS), pa.int64()), sessions),
        "interactive": pa.array([True], pa.bool_()).take(pa.array([0] * rows, pa.int8())),
    }

    def set_columns(names: tuple[str, ...], values: list[tuple[Any, ...]], of: pa.Array) -> None:
        """The columns `names` from a part's values (one tuple each) at the part ids `of`."""
        for j, name in enumerate(names):
            per_part = [v[j] for v in values]
            kind_type = EVENT_SCHEMA.field(name).type
            if kind_type == pa.string():
                columns[name] = _Encoded(per_part).take(of)
            else:
                columns[name] = pa.array(per_part, kind_type).take(of)

    row_page = _int32(got.page_of).take(order)
    set_columns(
        ("hostname", "pathname"),
        [(p.hostname, p.pathname) if p else (None, None) for p in pages],
        row_page,
    )
    set_columns(
        ("name", "props", "revenue", "currency"),
        [(name, list(props) if props else None, revenue, currency if revenue is not None else None)
         for name, props, revenue, currency in got.events.values],
        _int32(got.event_of).take(order),
    )  # fmt: skip
    visit_page = _int32(got.page_of).take(visit_row)
    set_columns(("entry_page",), [(p.pathname if p else None,) for p in pages], visit_page)
    # A visit's source comes from its first page and referrer together: each pair once.
    pairs: dict[tuple[int, int], int] = {}
    pair_of = array("i")
    for page, ref in zip(
        _int32(got.page_of).take(visits).to_pylist(),
        _int32(got.referrer_of).take(visits).to_pylist(),
        strict=True,
    ):
        n = pairs.get((page, ref))
        if n is None:
            n = pairs[(page, ref)] = len(pairs)
        pair_of.append(n)
    set_columns(
        SOURCE_COLUMNS,
        [_source_attrs(pages[page], got.referrers.values[ref]) for page, ref in pairs],
        _int32(pair_of).take(in_run),
    )
    set_columns(
        AGENT_COLUMNS,
        [tuple(a[1:]) if a else (None,) * 5 for a in agents],
        _int32(got.agent_of).take(visit_row),
    )
    set_columns(PLACE_COLUMNS, got.places.values, _int32(got.place_of).take(visit_row))
    names = EVENT_SCHEMA.names
    arrays = [
        columns[f.name] if f.name in columns else pa.nulls(rows, f.type) for f in EVENT_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _repeat(value: str, rows: int) -> pa.Array:
    """`value` on every row, as a dictionary of one string."""
    indices = pa.array([0], pa.int32()).take(pa.array([0] * rows, pa.int8()))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def _index_type(distinct: int) -> pa.DataType:
    """The narrowest signed integer type that numbers `distinct` values."""
    if distinct <= 1 << 7:
        return pa.int8()
    return pa.int16() if distinct <= 1 << 15 else pa.int32()


class _Encoded:
    """Each kind's string as an index into the distinct strings (None: a null index);
    take(rows) gives the rows' dictionary array without copying a string."""

    def __init__(self, values: list[str | None]) -> None:
        positions: dict[str, int] = {}
        index = [None if v is None else positions.setdefault(v, len(positions)) for v in values]
        # The narrowest index type: most kinds have a few distinct values (GA4 1M rows:
        # Arrow's peak while a run of 200k events is built and written, 45 MB with int32
        # indices everywhere, 34 MB so).
        self.index = pa.array(index, _index_type(len(positions)))
        self.dictionary = pa.array(list(positions), pa.string())

    def take(self, rows: pa.Array) -> pa.Array:
        return pa.DictionaryArray.from_arrays(self.index.take(rows), self.dictionary)
