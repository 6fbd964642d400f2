"""Answers from daily rollups where they cover the question, plus raw events for the
other days (usually today): the same numbers as raw events alone (rollup.py builds them)."""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.query.compile import compile_query
from app.query.compile_terms import Sql
from app.query.model import Order, Query
from app.query.rollup import (
    COMPONENTS,
    ROLLUP_PROPERTIES,
    TOTALS,
    component_query,
    implicit_filters,
    runs,
)
from app.query.run import Result, dialect_of, run_query_sync, zero_fill
from app.storage.rollups import ROLLUP_SUMS
from app.storage.store import Store

_REVENUE = COMPONENTS.index("revenue")
# The components each metric is computed from (final_metrics); a question sums only these.
_NEEDS = {
    "visitors": ("visitors",),
    "pageviews": ("pageviews",),
    "events": ("events",),
    "clicks": ("events",),
    "custom_events": ("custom_events",),
    "revenue": ("revenue",),
    "visits": ("visits",),
    "entries": ("visits",),
    "exits": ("visits",),
    "bounce_rate": ("visits", "bounces"),
    "visit_duration": ("visits", "duration"),
    "views_per_visit": ("visits", "session_pageviews"),
    "time_on_page": ("engaged_ms", "engaged_visitors"),
    "scroll_depth": ("scroll_sum", "scroll_count"),
}
# The components that aren't metrics already, as internal metrics: an answer that adds
# imported aggregates (imported.py) asks for the site's own components per bucket and value.
_COMPONENT_METRICS = tuple(c for c in COMPONENTS if c not in _NEEDS)
_NEEDS.update((c, (c,)) for c in _COMPONENT_METRICS)
NEEDS = _NEEDS


# The metrics rollups answer: every one computed from summed components.
ROLLUP_METRICS = frozenset(_NEEDS)


def needs(metric: str, pings_in_visits: bool = True) -> tuple[str, ...]:
    """The components a metric is computed from (Query.pings_in_visits false: the visit
    durations without engagement pings)."""
    if metric == "visit_duration" and not pings_in_visits:
        return ("visits", "event_duration")
    return _NEEDS[metric]


def _needed(metrics: Iterable[str], prop: str, pings_in_visits: bool = True) -> set[str]:
    """The components a question reads."""
    needed = {c for m in metrics for c in needs(m, pings_in_visits)}
    if prop:
        needed.add("events")  # a value with no events is not a row (see _result)
    return needed


def _sums(q: Query, prop: str) -> list[str]:
    """The stored sums a question needs, 0 for the others (each sum of ~100k rows costs)."""
    needed = _needed(q.metrics, prop, q.pings_in_visits)
    return [ROLLUP_SUMS[c] if c in needed else "0" for c in COMPONENTS]


# Metrics whose order is the order of one summed component: a breakdown ordered by these
# is ordered and paged by DuckDB (_page_in_sql), not in Python over every value.
_ORDER_COMPONENT = {
    "visitors": "visitors",
    "visits": "visits",
    "entries": "visits",
    "exits": "visits",
    "pageviews": "pageviews",
    "events": "events",
    "clicks": "events",
    "custom_events": "custom_events",
}
_EVENTS = COMPONENTS.index("events")


def _raw_components(
    store: Store,
    site_id: str,
    zone: ZoneInfo,
    run: tuple[date, date],
    prop: str,
    components: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Rows of components per day and value for a run of days; a run of one day (usually
    today) is asked without a time bucket, a cheaper plan, and its rows labelled after."""
    first, last = run
    one_day = first == last
    q = component_query(site_id, zone, first, last, prop, components, by_day=not one_day)
    rows = run_query_sync(store, q).rows
    if not one_day:
        return rows
    label = datetime(first.year, first.month, first.day)
    return [{**row, "time": label} for row in rows]


def eligible(q: Query) -> bool:
    """Whether rollups can answer this question (the rest of it comes from raw events)."""
    if q.site_timezone is None or q.site_timezone != q.period.timezone or q.period.rolling:
        return False
    if q.interval not in (None, "day", "week", "month") or len(q.properties) > 1:
        return False
    prop = q.properties[0] if q.properties else TOTALS
    if prop and prop not in ROLLUP_PROPERTIES:
        return False
    if q.revenue_currency is not None:  # rollups sum revenue over every currency
        return False
    return q.filters == implicit_filters(prop) and set(q.metrics) <= ROLLUP_METRICS


def answer(store: Store, q: Query) -> Result | None:
    """The answer from rollups where they exist and raw events elsewhere; None = no rollups
    cover any day of the period (then the raw path answers alone)."""
    if not eligible(q):
        return None
    prop = q.properties[0] if q.properties else TOTALS
    first, last = q.period.first_day, q.period.last_day
    rolled = {d for d in store.rolled_days(q.site_id) if first <= d <= last}
    if not rolled:
        return None
    zone = ZoneInfo(q.period.timezone)
    # Days without a rollup (today, late or not yet built) come from raw events. Only those
    # days are looked up (usually just today): never a scan of the whole period's raw.
    unrolled = _unrolled_span(first, last, rolled)
    # Only the components the metrics read: today's raw part is most of a rollup answer's
    # time, and a question of visitors needs no session, scroll or engagement work.
    raw_runs = _raw_runs(store, q.site_id, unrolled, rolled)
    if _pageable(q, prop):
        return _page_in_sql(store, q, prop, raw_runs)
    wanted = _needed(q.metrics, prop, q.pings_in_visits) | {"events"}
    needed = tuple(c for c in COMPONENTS if c in wanted)
    raw_rows: list[dict[str, Any]] = [
        {c: row.get(c) or 0 for c in COMPONENTS} | {"time": row["time"], prop: row.get(prop)}
        for run in raw_runs
        for row in _raw_components(store, q.site_id, zone, run, prop, needed)
        if any(row[c] for c in needed)
    ]
    sums: dict[tuple[Any, Any], list[Any]] = defaultdict(lambda: [0] * len(COMPONENTS))
    interval = q.interval
    for day, value, *components in _stored(store, q, prop):
        # DuckDB sums DECIMAL revenue as Decimal; the raw path hands floats: add as floats.
        components[_REVENUE] = float(components[_REVENUE])
        key = (_bucket(day, interval) if day else None, value)
        if key in sums:
            _add(sums[key], components)
        else:
            sums[key] = components  # one stored row a key unless days fold into weeks/months
    for row in raw_rows:
        key = (_bucket(row["time"].date(), interval), row.get(prop) if prop else None)
        _add(sums[key], [row[c] for c in COMPONENTS])
    return _result(q, prop, sums)


def _stored(store: Store, q: Query, prop: str) -> list[tuple[Any, ...]]:
    """(day or None, value, components...) from daily rollups for the period. Totals come
    from the store's copy in memory (_stored_totals); for a property, a series
    reads its (day, value) rows as they are, one stored row each (the per-row form of
    ROLLUP_SUMS, no grouping to plan); a breakdown or total has DuckDB sum the days per
    value (a year of pages is ~1k rows, not the ~200k (day, page) rows)."""
    if not prop:
        return _stored_totals(store, q)
    sums = _sums(q, prop)
    sql = Sql(dialect_of(store))
    if q.interval:
        columns = ", ".join(re.sub(r"\bsum\((\w+)\)", r"\1", e) for e in sums)
        select, group = f"SELECT day, value, {columns}", ""
    else:
        select, group = f"SELECT {sql.d.null_date}, value, {', '.join(sums)}", " GROUP BY value"
    return store.query(f"{select} FROM {_rollups_where(sql, q, prop)}{group}", sql.params)


def _rollups_where(sql: Sql, q: Query, prop: str) -> str:
    """The daily rollups table and the rows of a question's site, property and days."""
    return (
        f"{sql.d.rollups} WHERE site_id = {sql.bind(q.site_id)}"
        f" AND property = {sql.bind(prop)} AND day BETWEEN {sql.bind(q.period.first_day)}"
        f" AND {sql.bind(q.period.last_day)}"
    )


def _stored_totals(store: Store, q: Query) -> list[tuple[Any, ...]]:
    """_stored() for the totals: a series' day rows, or their sum (revenue an exact
    Decimal, like DuckDB's sum of the stored DECIMAL)."""
    totals = store.rollup_totals(q.site_id)
    first, last = q.period.first_day, q.period.last_day
    if q.interval:
        needed = _needed(q.metrics, "", q.pings_in_visits)
        wanted = {i for i, c in enumerate(COMPONENTS) if c in needed}
        return [(day, None, *c) for day, *c in totals.rows(first, last, wanted)]
    return [(None, None, *totals.sums(first, last))]


def _pageable(q: Query, prop: str) -> bool:
    """Whether _page_in_sql answers: a page of a breakdown ordered by plain sums."""
    orders = q.order_by or (Order(q.metrics[0], True),)
    if q.interval or not prop or q.limit is None:
        return False
    return all(o.key in q.metrics and o.key in _ORDER_COMPONENT for o in orders)


def _page_in_sql(store: Store, q: Query, prop: str, raw_runs: list[tuple[date, date]]) -> Result:
    """One page of a breakdown ordered by plain sums, in one statement: the rollups' sums
    per value, plus the raw days' components (usually today's, compiled into the same
    statement: a second statement costs its own planning, ~5 ms here), merged, ordered and
    paged in DuckDB. A year of pages is ~3k values: building, scoring and sorting them in
    Python was most of the answer's time. Same order as _sorted (the keys, then the value
    ascending, NULL last), same rows (values with events), same total. Only the components
    the metrics read are summed."""
    orders = q.order_by or (Order(q.metrics[0], True),)
    needed = _needed(q.metrics, prop, q.pings_in_visits) | {"events"}  # HAVING: values with events
    wanted = [(i, c) for i, c in enumerate(COMPONENTS) if c in needed]
    sums = _sums(q, prop)
    dialect = dialect_of(store)
    stored = ", ".join(f"{dialect.component(c, sums[i])} AS c{i}" for i, c in wanted)
    sql = Sql(dialect)  # binds the whole statement's values, in text order
    parts = [f"SELECT value, {stored} FROM {_rollups_where(sql, q, prop)} GROUP BY value"]
    zone = ZoneInfo(q.period.timezone)
    components = tuple(c for _, c in wanted)
    for first, last in raw_runs:  # summed over the run's days: components add up per day
        question = component_query(q.site_id, zone, first, last, prop, components)
        raw = compile_query(question, dialect, first_param=len(sql.params))
        columns = ", ".join(f"{dialect.component(c, c)} AS c{i}" for i, c in wanted)
        parts.append(f"SELECT d0 AS value, {columns} FROM ({raw.sql})")
        sql.params += raw.params
    if len(parts) > 1:
        merged_sums = ", ".join(f"sum(c{i}) AS c{i}" for i, _ in wanted)
        merged = (
            f"SELECT value, {merged_sums} FROM ({' UNION ALL '.join(parts)})"
            f" GROUP BY value HAVING sum(c{_EVENTS}) > 0"
        )
    else:
        merged = f"{parts[0]} HAVING {sums[_EVENTS]} > 0"
    order = ", ".join(
        f"c{COMPONENTS.index(_ORDER_COMPONENT[o.key])} {'DESC' if o.descending else 'ASC'}"
        for o in orders
    )
    params = list(sql.params)
    found = store.query(
        f"SELECT *, count(*) OVER () FROM ({merged}) ORDER BY {order}, value ASC NULLS LAST"
        f" LIMIT {sql.bind(q.limit)} OFFSET {sql.bind(q.offset)}",
        sql.params,
    )
    if found:
        total = int(found[0][-1])
    else:  # a page past the end: count alone
        total = int(store.query(f"SELECT count(*) FROM ({merged})", params)[0][0])
    rows = []
    for value, *values, _total in found:
        summed: list[Any] = [0] * len(COMPONENTS)
        for (i, _), v in zip(wanted, values, strict=True):
            summed[i] = v
        rows.append({**final_metrics(summed, q.metrics, q.pings_in_visits), prop: value})
    return Result(rows=rows, total_rows=total, from_rollups=True)


def _raw_runs(
    store: Store, site_id: str, span: tuple[date, date] | None, rolled: set[date]
) -> list[tuple[date, date]]:
    """The runs of days in span that raw events answer: the span itself when no rolled day
    is inside it (usually today alone: no look-up), else its days with events."""
    if span is None:
        return []
    first, last = span
    if not any(first <= d <= last for d in rolled):
        return [span]
    days = store.day_counts(site_id, first, last)
    return runs(d for d in days if d not in rolled)


def _unrolled_span(first: date, last: date, rolled: set[date]) -> tuple[date, date] | None:
    """The first and last day of first..last without a rollup (None: every day has one),
    in at most len(rolled) steps whatever the length of the range."""
    one = timedelta(days=1)
    lo, hi = first, last
    while lo <= hi and lo in rolled:
        lo += one
    while hi >= lo and hi in rolled:
        hi -= one
    return (lo, hi) if lo <= hi else None


def _bucket(day: date, interval: str | None) -> datetime | None:
    if interval is None:
        return None
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day)


def _add(total: list[Any], components: Iterable[Any]) -> None:
    for i, value in enumerate(components):
        # DuckDB sums DECIMAL revenue as Decimal; the raw path hands floats: add as floats.
        total[i] += float(value) if isinstance(value, Decimal) else (value or 0)


_AT = {c: i for i, c in enumerate(COMPONENTS)}


def _value(component: str) -> Any:
    at = _AT[component]
    return lambda c: c[at]


def _ratio(numerator: str, denominator: str, scale: float = 1.0) -> Any:
    n, d = _AT[numerator], _AT[denominator]
    return lambda c: scale * c[n] / c[d] if c[d] else 0


def _revenue(c: list[Any]) -> Any:
    value = c[_REVENUE]
    return float(value) if isinstance(value, Decimal) else value


def _time_on_page(c: list[Any]) -> Any:
    engaged = c[_AT["engaged_visitors"]]
    return c[_AT["engaged_ms"]] / 1000.0 / engaged if engaged else 0


def _scroll_depth(c: list[Any]) -> Any:
    count = c[_AT["scroll_count"]]
    return c[_AT["scroll_sum"]] / count if count else None


# Each metric from summed components, a list in COMPONENTS order (the same formulas as the
# raw compiler).
_METRIC = {
    "visitors": _value("visitors"),
    "pageviews": _value("pageviews"),
    "events": _value("events"),
    "custom_events": _value("custom_events"),
    "clicks": _value("events"),
    "revenue": _revenue,
    "visits": _value("visits"),
    "entries": _value("visits"),
    "exits": _value("visits"),
    "bounce_rate": _ratio("bounces", "visits", 100.0),
    "visit_duration": _ratio("duration", "visits"),
    "views_per_visit": _ratio("session_pageviews", "visits"),
    "time_on_page": _time_on_page,
    "scroll_depth": _scroll_depth,
    **{c: _value(c) for c in _COMPONENT_METRICS},
}


_VISIT_DURATION_WITHOUT_PINGS = _ratio("event_duration", "visits")


def final_metrics(
    c: list[Any], metrics: Iterable[str], pings_in_visits: bool = True
) -> dict[str, Any]:
    """These metrics' values from summed components in COMPONENTS order (only these: a
    year's series computes them for every day)."""
    formulas = (
        _METRIC if pings_in_visits else {**_METRIC, "visit_duration": _VISIT_DURATION_WITHOUT_PINGS}
    )
    return {m: formulas[m](c) for m in metrics}


def _result(q: Query, prop: str, sums: dict[tuple[Any, Any], list[Any]]) -> Result:
    rows = []
    interval, metrics = q.interval, q.metrics
    for (bucket, value), totals in sums.items():
        if prop and not totals[_EVENTS]:
            continue  # a value seen only on engagement pings is not a row (as in raw)
        row = final_metrics(totals, metrics, q.pings_in_visits)
        if prop:
            row[prop] = value
        if interval:
            row["time"] = bucket
        rows.append(row)
    if interval and not prop:
        # total_rows counts buckets with data, as the raw path does; zeros fill the rest.
        return Result(rows=zero_fill(q, rows), total_rows=len(rows), from_rollups=True)
    total = len(rows)
    top = _top(rows, q, prop)
    if top is not None:
        return Result(rows=top, total_rows=total, from_rollups=True)
    rows = _sorted(rows, q, prop)
    if q.limit is not None:
        rows = rows[q.offset : q.offset + q.limit]
    return Result(rows=rows, total_rows=total, from_rollups=True)


def _top(rows: list[dict[str, Any]], q: Query, prop: str) -> list[dict[str, Any]] | None:
    """_sorted's order and the page in one pass when every order key is a (numeric) metric:
    a page of a long breakdown without sorting all of it; None = use _sorted."""
    orders = q.order_by or (Order(q.metrics[0], True),)
    if q.limit is None or not prop or any(o.key not in q.metrics for o in orders):
        return None
    signs = [(o.key, -1 if o.descending else 1) for o in orders]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for k, sign in signs:
            v = r[k]
            parts += (True, 0) if v is None else (False, sign * v)
        v = r[prop]
        return (*parts, v is None, v or "")

    return heapq.nsmallest(q.offset + q.limit, rows, key=key)[q.offset :]


def _sorted(rows: list[dict[str, Any]], q: Query, prop: str) -> list[dict[str, Any]]:
    """The raw compiler's order: the order_by keys, then the value ascending, nulls last."""
    orders = q.order_by or (Order(q.metrics[0], True),)
    rows.sort(key=lambda r: (r.get(prop) is None, r.get(prop) or "") if prop else 0)
    for order in reversed(orders):
        key = order.key if order.key in q.metrics else prop
        present = [r for r in rows if r.get(key) is not None]
        absent = [r for r in rows if r.get(key) is None]
        present.sort(key=lambda r: r[key], reverse=order.descending)
        rows = absent + present if order.nulls_first else present + absent
    return rows


# For imported.py: metrics from (bucket, value) -> summed components, and a day's bucket.
answer_from_sums = _result
bucket_of = _bucket
