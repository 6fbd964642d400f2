"""SQL over imported daily aggregates (imported_stats, migration events/007): a question's
components per day and value, summed from one imported table, with the question's filters.

Which table answers which question follows Plausible (plausible/analytics
lib/plausible/stats/imported/base.ex, @property_to_table_mappings and decide_tables/1):
every property asked or filtered on must live in one and the same table (none: the
visitors table); a question that needs two tables, a custom property, a goal's
conversion rate or revenue gets no imported data ("unsupported_query"). Hours and
minutes: imports are daily ("unsupported_interval")."""

from __future__ import annotations

from typing import NamedTuple

from app.query.compile_terms import Sql, dimension_expr, filter_sql
from app.query.dialect import DUCKDB, Dialect
from app.query.model import Query, filter_dimensions

# Our property -> the imported table (imported_stats.kind) that holds it.
TABLE_OF = {
    **dict.fromkeys(
        ("source", "channel", "referrer", "utm_source", "utm_medium", "utm_campaign",
         "utm_content", "utm_term"),
        "sources",
    ),
    "entry_page": "entry_pages",
    "exit_page": "exit_pages",
    **dict.fromkeys(("country", "region", "city"), "locations"),
    "device": "devices",
    **dict.fromkeys(("browser", "browser_version"), "browsers"),
    **dict.fromkeys(("os", "os_version"), "operating_systems"),
    "page": "pages",
    "hostname": "pages",
    "event": "custom_events",
}  # fmt: skip
_VISIT = frozenset(
    {"visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration",
     "views_per_visit", "bounces"}
)  # fmt: skip
# The metrics each table can answer (its columns: csv_importer.ex's input structures).
METRICS_OF = {
    "visitors": _VISIT,
    "sources": _VISIT,
    "locations": _VISIT,
    "devices": _VISIT,
    "browsers": _VISIT,
    "operating_systems": _VISIT,
    "entry_pages": _VISIT | {"entries"},
    "exit_pages": _VISIT | {"exits"},
    "pages": frozenset(
        {"visitors", "visits", "pageviews", "events", "scroll_depth", "time_on_page"}
    ),
    "custom_events": frozenset({"visitors", "events"}),
}
# Each rollup component (app/query/rollup.py COMPONENTS) from imported_stats' columns.
COMPONENT_SQL = {
    "visitors": "sum(visitors)",
    "visits": "sum(visits)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "custom_events": "sum(events) FILTER (WHERE kind = 'custom_events')",
    "bounces": "sum(bounces)",
    "duration": "sum(duration)",
    "session_pageviews": "sum(pageviews)",
    "revenue": "0",
    "engaged_ms": "sum(engaged_ms)",
    "engaged_visitors": "sum(engaged_visitors)",
    "scroll_sum": "sum(scroll_sum)",
    "scroll_count": "sum(scroll_count)",
    # Plausible's own visit durations: engagement events never lengthened them.
    "event_duration": "sum(duration)",
}


class Decision(NamedTuple):
    table: str | None
    skip_reason: str | None  # Plausible's imports_skip_reason when table is None


def decide(q: Query) -> Decision:
    """The imported table that answers q, or why none can."""
    if q.interval in ("minute", "hour"):
        return Decision(None, "unsupported_interval")
    used = set(q.properties)
    for tree in q.filters:
        used |= filter_dimensions(tree)
    if len(q.properties) > 1 or any(p not in TABLE_OF for p in used):
        return Decision(None, "unsupported_query")
    tables = {TABLE_OF[p] for p in used} or {"visitors"}
    if len(tables) > 1:
        return Decision(None, "unsupported_query")
    table = tables.pop()
    if not set(q.metrics) <= METRICS_OF[table]:
        return Decision(None, "unsupported_query")
    return Decision(table, None)


def compile_imported(
    q: Query, table: str, components: tuple[str, ...], dialect: Dialect = DUCKDB
) -> tuple[str, list[object]]:
    """(sql, params): rows of (day, value of the question's property or NULL, components...)
    from `table` over the question's days, with its filters, in the dialect's SQL."""
    sql = Sql(dialect)
    prop = q.properties[0] if q.properties else None
    value = dimension_expr(sql, prop) if prop else "NULL"
    sums = ", ".join(COMPONENT_SQL[c] for c in components)
    site = f"site_id = {sql.bind(q.site_id)}"  # `?`s bind in text order
    if table == "custom_events":
        # The event breakdown's pageview row: the visitors table's (its name is pageview).
        kinds = "kind IN ('custom_events', 'visitors')"
    elif table != "visitors":
        kinds = f"kind = {sql.bind(table)}"
    else:
        # The day's totals: events are its pageviews plus its custom events (as the site's
        # own events count); every other count is the visitors table's.
        own = {c: f"{e} FILTER (WHERE kind = 'visitors')" for c, e in COMPONENT_SQL.items()}
        own["events"] = "sum(events)"
        own["custom_events"] = COMPONENT_SQL["custom_events"]
        own["revenue"] = "0"
        sums = ", ".join(own[c] for c in components)
        kinds = "kind IN ('visitors', 'custom_events')"
    where = [
        site,
        kinds,
        f"day BETWEEN {sql.bind(q.period.first_day)} AND {sql.bind(q.period.last_day)}",
        *(filter_sql(sql, t) for t in q.filters),
    ]
    text = (
        f"SELECT day, {value} AS value, {sums} FROM imported_stats"
        f" WHERE {' AND '.join(where)} GROUP BY day, value"
    )
    return text, sql.params
