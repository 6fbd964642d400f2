"""Part of the compiler: the one-pass plan for questions about visits only.

When every dimension and filter is a visit attribute (copied onto each event of a session
at ingest) and no time bucket is asked, a question is answered by grouping events into
sessions once and then sessions into rows: one scan instead of events + sessions + a join.
compile.py decides when this applies; both plans give identical numbers (the stats tests
compare every metric with an independent answer key)."""

from __future__ import annotations

from app.query.model import COLUMNS, EVENT_PROPERTIES, Query, filter_dimensions

# Visit attributes: equal on every event of a session, so any_value() per session is exact.
SESSION_DIMENSIONS = frozenset(COLUMNS) - EVENT_PROPERTIES - {"hostname", "exit_page"}
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
}


def applies(q: Query) -> bool:
    """True when the question only involves visit attributes and session metrics."""
    if q.interval is not None or not set(q.metrics) <= SESSION_METRICS.keys():
        return False
    dims = set(q.properties)
    for tree in q.filters:
        dims |= filter_dimensions(tree)
    return dims <= SESSION_DIMENSIONS


def session_cte(
    dims_sql: str, range_sql: str, filters_sql: list[str], non_event: str, interactive: str
) -> str:
    """Each session of the range once, with what the metrics need."""
    return (
        "s AS (SELECT session_id, any_value(visitor_id) AS v,"
        " count(*) FILTER (WHERE name = 'pageview') AS pv,"
        f" count(*) FILTER (WHERE {non_event}) AS evs,"
        " count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement')) AS ce,"
        f" sum(revenue) AS rev, count(*) FILTER (WHERE {interactive}) AS ic,"
        f" epoch(max(ts)) - epoch(min(ts)) AS dur{dims_sql}"
        f" FROM events WHERE {' AND '.join([range_sql, *filters_sql])}"
        f" GROUP BY session_id HAVING count(*) FILTER (WHERE {non_event}) > 0)"
    )
