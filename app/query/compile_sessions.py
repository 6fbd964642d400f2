"""Part of the compiler: the one-pass plan for questions about visits only.

When every dimension and filter is a visit attribute (copied onto each event of a session
at ingest) and no time bucket is asked, a question is answered by grouping events into
sessions once and then sessions into rows: one scan instead of events + sessions + a join.
compile.py decides when this applies; both plans give identical numbers (the stats tests
compare every metric with an independent answer key)."""

from __future__ import annotations

import re

from app.query.dialect import Dialect
from app.query.model import (
    COLUMNS,
    EVENT_PROPERTIES,
    SESSION_COMPUTED,
    Query,
    filter_dimensions,
)

# Visit attributes: equal on every event of a session, so any_value() per session is exact.
SESSION_DIMENSIONS = frozenset(COLUMNS) - EVENT_PROPERTIES - SESSION_COMPUTED - {"hostname"}
SESSION_METRICS = {
    "visitors": "count(DISTINCT v)",
    "visits": "count(*)",
    "entries": "count(*)",
    "pageviews": "coalesce(sum(pv), 0)",
    "events": "coalesce(sum(evs), 0)",
    "custom_events": "coalesce(sum(ce), 0)",
    "revenue": "coalesce(sum(rev), 0)",
    "bounce_rate": "coalesce(100.0 * count(*) FILTER (WHERE pv <= 1 AND ic = 0)"
    " / nullif(count(*), 0), 0)",
    "visit_duration": "coalesce(avg(dur), 0)",
    "views_per_visit": "coalesce(sum(pv) / nullif(count(*), 0), 0)",
    # Components (rollup.py sums them per day).
    "bounces": "count(*) FILTER (WHERE pv <= 1 AND ic = 0)",
    "duration": "coalesce(sum(dur), 0)",
    "event_duration": "coalesce(sum(edur), 0)",
    "session_pageviews": "coalesce(sum(pv), 0)",
}


def metric_exprs(q: Query) -> dict[str, str]:
    """SESSION_METRICS as this question defines them: without engagement pings in visits
    (Query.pings_in_visits false), visit_duration spans a visit's other events."""
    if q.pings_in_visits:
        return SESSION_METRICS
    return {**SESSION_METRICS, "visit_duration": "coalesce(avg(edur), 0)"}


def applies(q: Query) -> bool:
    """True when the question only involves visit attributes and session metrics."""
    if q.interval is not None or not set(q.metrics) <= SESSION_METRICS.keys():
        return False
    dims = set(q.properties)
    for tree in q.filters:
        dims |= filter_dimensions(tree)
    return dims <= SESSION_DIMENSIONS


# Each per-session column and its aggregate; a question computes only those its metrics read.
_SESSION_COLUMNS = {
    "v": "any_value(visitor_id)",
    "pv": "count(*) FILTER (WHERE name = 'pageview')",
    "evs": "count(*) FILTER (WHERE {non_event})",
    "ce": "count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement'))",
    "rev": "sum(revenue)",
    "ic": "count(*) FILTER (WHERE {interactive})",
    "dur": "{epoch_max} - {epoch_min}",
    # Whole seconds, as Plausible's timestamps (truncated to the second at ingest).
    "edur": "{second_max} - {second_min}",
}
# Columns that engagement pings change: duration (a ping extends the visit) and revenue
# (not known to be NULL on pings). Without them the scan may leave pings out.
_READ_PINGS = frozenset({"dur", "rev"})


def columns_of(metrics: tuple[str, ...], exprs: dict[str, str] = SESSION_METRICS) -> list[str]:
    """The per-session columns these metrics read, in _SESSION_COLUMNS' order."""
    used = set()
    for metric in metrics:
        used |= set(re.findall(r"\b[a-z]+\b", exprs[metric]))
    return [c for c in _SESSION_COLUMNS if c in used]


def session_cte(
    d: Dialect,
    metrics: tuple[str, ...],
    dims_sql: str,
    range_sql: str,
    filters_sql: list[str],
    non_event: str,
    interactive: str,
    exprs: dict[str, str] = SESSION_METRICS,
) -> str:
    """Each session of the range once, with what the metrics need. A session of
    engagement pings alone is no visit: left out of the scan when no column reads pings
    (as a hand-written query would), else dropped by HAVING."""
    columns = columns_of(metrics, exprs)
    terms = {
        "non_event": non_event,
        "interactive": interactive,
        "epoch_max": d.epoch("max(ts)"),
        "epoch_min": d.epoch("min(ts)"),
        "second_max": d.epoch(d.trunc("second", f"max(ts) FILTER (WHERE {non_event})")),
        "second_min": d.epoch(d.trunc("second", f"min(ts) FILTER (WHERE {non_event})")),
    }
    aggregates = "".join(f", {_SESSION_COLUMNS[c].format(**terms)} AS {c}" for c in columns)
    where = [range_sql, *filters_sql]
    having = ""
    if _READ_PINGS & set(columns):
        having = f" HAVING {d.bool_or(non_event)}"  # ~1 ms cheaper than count(*) FILTER
    else:
        where.append(non_event)
    return (
        f"s AS (SELECT session_id{aggregates}{dims_sql}"
        f" FROM events WHERE {' AND '.join(where)} GROUP BY session_id{having})"
    )
