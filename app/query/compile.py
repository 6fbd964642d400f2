"""The one place stats SQL is written: Query -> (sql, params), composed of the terms in
compile_terms.py. Every value is a bound `?`; names come only from the allow-lists in
model.py."""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from app.errors import InvalidRequest
from app.query import compile_sessions
from app.query.compile_terms import Sql, bucket_expr, dimension_expr, filter_sql, uses_day_column
from app.query.dialect import DUCKDB, Dialect
from app.query.model import EVENT_PROPERTIES, SESSION_COMPUTED, Query, filter_dimensions

NON_EVENT = "name <> 'engagement'"
# Where the revenue aggregates take Query.revenue_currency: replaced by a bound filter, or
# dropped (_in_currency) before the text is used.
CURRENCY_FILTER = " FILTER (WHERE currency = :revenue_currency)"
# A custom event that proves the visitor interacted (a bounce has none of these).
INTERACTIVE = "name NOT IN ('pageview', 'engagement') AND interactive"


class Compiled(NamedTuple):
    sql: str
    params: list[object]
    keys: tuple[str, ...]  # output key columns: d0.. for properties, "bucket" for time


class _Plan(NamedTuple):
    keys: tuple[str, ...]
    key_exprs: tuple[str, ...]


def _plan(sql: Sql, q: Query, zone: ZoneInfo) -> _Plan:
    keys: list[str] = []
    exprs: list[str] = []
    for i, dim in enumerate(q.properties):
        keys.append(f"d{i}")
        exprs.append(f"{dimension_expr(sql, dim)} AS d{i}")
    if q.interval is not None:
        keys.append("bucket")
        exprs.append(f"{bucket_expr(sql, q, zone)} AS bucket")
    return _Plan(tuple(keys), tuple(exprs))


def _key_out(d: Dialect, key: str) -> str:
    # A day bucket read from `day` is a DATE: the same instant as a TIMESTAMP on output.
    return f"{d.timestamp('ev.bucket')} AS bucket" if key == "bucket" else f"ev.{key}"


def _range(sql: Sql, q: Query) -> str:
    return (
        f"site_id = {sql.bind(q.site_id)} AND ts >= {sql.bind(q.period.start)}"
        f" AND ts < {sql.bind(q.period.end)}"
    )


def _drops_pings(q: Query) -> bool:
    return "event" in q.properties or _skips_pings(q)


def _where(sql: Sql, q: Query) -> str:
    """The events a question counts: its range and filters, without engagement pings when
    nothing asked needs them."""
    where = [_range(sql, q), *(filter_sql(sql, t) for t in q.filters)]
    if _drops_pings(q):
        where.append(NON_EVENT)  # engagement pings are not events of their own
    return " AND ".join(where)


def _having_events(d: Dialect, q: Query) -> str:
    """A breakdown's values are those with events: pings alone make no row. Nothing to
    drop when the scan left pings out (a redundant HAVING costs ~1-3 ms); bool_or is
    ~1 ms cheaper than count(*) FILTER (...) > 0 on a small site's month."""
    if not q.properties or _drops_pings(q):
        return ""
    return f" HAVING {d.bool_or(NON_EVENT)}"


def _on(left: str, right: str, keys: tuple[str, ...]) -> str:
    if not keys:
        return "true"
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in keys)


def _needs(q: Query) -> tuple[bool, bool]:
    """(sessions CTE needed, exit page needed) — decided before anything is bound."""
    dims = set(q.properties)
    for tree in q.filters:
        dims |= filter_dimensions(tree)
    needs_exit = bool(SESSION_COMPUTED & dims)  # the sessions CTE joined to events
    session_metrics = {
        "visits",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "entries",
        "exits",
        "bounces",
        "duration",
        "event_duration",
        "bounce_visits",
        "session_pageviews",
    }
    return needs_exit or bool(session_metrics & set(q.metrics)), needs_exit


# Event aggregates (ev's columns), computed only for the metrics asked (each
# count(DISTINCT) is a hash set).
_EVENT_AGGREGATES = {
    "visitors": f"count(DISTINCT visitor_id) FILTER (WHERE {NON_EVENT})",
    "pageviews": "count(*) FILTER (WHERE name = 'pageview')",
    "events": f"count(*) FILTER (WHERE {NON_EVENT})",
    "revenue": f"sum(revenue){CURRENCY_FILTER}",
    "revenue_events": f"count(revenue){CURRENCY_FILTER}",
    "custom_events": "count(*) FILTER (WHERE name NOT IN ('pageview', 'engagement'))",
    "engaged_ms": "sum(engagement_ms) FILTER (WHERE name = 'engagement')",
    "engaged_visitors": "count(DISTINCT visitor_id) FILTER (WHERE name = 'engagement')",
}
# Without engagement pings in the scan, the two aggregates that skip them need no FILTER.
_EVENT_AGGREGATES_NO_PINGS = {
    **_EVENT_AGGREGATES,
    "visitors": "count(DISTINCT visitor_id)",
    "events": "count(*)",
}
# Metrics that read engagement pings (revenue: not known to be NULL on them).
_READS_PINGS = frozenset(
    {
        "revenue",
        "revenue_events",
        "average_revenue",
        "time_on_page",
        "engaged_ms",
        "engaged_visitors",
        "scroll_depth",
        "scroll_sum",
        "scroll_count",
    }
)


def _skips_pings(q: Query) -> bool:
    """Whether engagement pings can be left out of the scan (as a hand-written query
    would): every event aggregate asked skips them and the rows stay the same. One row
    for an aggregate; a breakdown drops values without events anyway (HAVING); a site-day
    never has pings without an event (a ping needs a session, a session ends at the site's
    midnight). Else (hours, another zone, filters) buckets of pings alone would go."""
    if _READS_PINGS & set(q.metrics):
        return False
    return q.interval is None or bool(q.properties) or (uses_day_column(q) and not q.filters)


def _event_needs(metrics: tuple[str, ...]) -> set[str]:
    needs = set(metrics)
    if "average_revenue" in needs:
        needs |= {"revenue", "revenue_events"}
    if "clicks" in needs:
        needs.add("events")
    if "conversion_rate" in needs:
        needs.add("visitors")
    if "time_on_page" in needs:
        needs |= {"engaged_ms", "engaged_visitors"}
    return needs


_METRIC_SQL = {
    "visitors": "coalesce(ev.visitors, 0)",
    "pageviews": "coalesce(ev.pageviews, 0)",
    "events": "coalesce(ev.events, 0)",
    "clicks": "coalesce(ev.events, 0)",
    "custom_events": "coalesce(ev.custom_events, 0)",
    "revenue": "coalesce(ev.revenue, 0)",
    # Plausible v2's average_revenue: over the events with revenue (NULL without any).
    "average_revenue": "ev.revenue / nullif(ev.revenue_events, 0)",
    "visits": "coalesce(vs.visits, 0)",
    "entries": "coalesce(vs.visits, 0)",
    "exits": "coalesce(vs.visits, 0)",
    "bounce_rate": "coalesce(100.0 * vs.bounces / nullif(vs.visits, 0), 0)",
    "visit_duration": "coalesce(vs.duration / nullif(vs.visits, 0), 0)",
    "views_per_visit": "coalesce(vs.session_pageviews / nullif(vs.visits, 0), 0)",
    "time_on_page": "coalesce(ev.engaged_ms / 1000.0 / nullif(ev.engaged_visitors, 0), 0)",
    "scroll_depth": "sd.scroll",
    # Components: additive per day, what rollups store and sum (app/query/rollup.py).
    "bounces": "coalesce(vs.bounces, 0)",
    "duration": "coalesce(vs.duration, 0)",
    "event_duration": "coalesce(vs.event_duration, 0)",
    # bounce_rate's denominator: every visit, or those that entered on Query.bounce_entry.
    "bounce_visits": "coalesce(vs.visits, 0)",
    "session_pageviews": "coalesce(vs.session_pageviews, 0)",
    "engaged_ms": "coalesce(ev.engaged_ms, 0)",
    "engaged_visitors": "coalesce(ev.engaged_visitors, 0)",
    "scroll_sum": "coalesce(sd.scroll_sum, 0)",
    "scroll_count": "coalesce(sd.scroll_count, 0)",
    "conversion_rate": "coalesce(100.0 * ev.visitors / nullif(tot.visitors, 0), 0)",
}


@cache
def _metric_sql(d: Dialect) -> dict[str, str]:
    """_METRIC_SQL in the dialect: average revenue as a fraction, not a decimal cut to the
    revenue's six places (ClickHouse divides decimals as decimals). Made once per dialect:
    callers that change it copy it."""
    spelled = dict(_METRIC_SQL)
    spelled["average_revenue"] = d.fraction("ev.revenue", "nullif(ev.revenue_events, 0)")
    return spelled


def compile_query(q: Query, dialect: Dialect = DUCKDB, first_param: int = 0) -> Compiled:
    """The whole question as one statement, in the engine's dialect; CTEs only for the
    metric families it asks. first_param: where its values start among those of a
    statement it becomes part of (named parameters are numbered)."""
    for metric in q.metrics:
        if metric not in _METRIC_SQL:
            raise InvalidRequest(f"unknown metric {metric!r}")
    needs_sessions, needs_exit = _needs(q)
    if not needs_sessions and _EVENT_ONLY.issuperset(q.metrics):
        # No session is looked at: one GROUP BY over events.
        return _compile_flat(q, Sql(dialect, first_param))
    if compile_sessions.applies(q) and q.bounce_entry is None and q.revenue_currency is None:
        return _compile_by_session(q, Sql(dialect, first_param))
    sql = Sql(dialect, first_param)
    d = dialect
    zone = ZoneInfo(q.period.timezone)
    ctes = []
    event_span = _reads_event_duration(q)
    if needs_sessions:
        columns = [
            "min(ts) AS t0",
            "max(ts) AS t1",
            "count(*) FILTER (WHERE name = 'pageview') AS pv",
            f"count(*) FILTER (WHERE {INTERACTIVE}) AS ic",
            # The last pageview by (time, path): two of a visit can share an instant (imports
            # have whole seconds), and arg_max would pick one by chance.
            f"{d.arg_max('pathname', '(ts, pathname)')} FILTER (WHERE name = 'pageview')"
            " AS exit_page",
        ]
        if event_span:  # the visit without its engagement pings
            columns += [
                f"min(ts) FILTER (WHERE {NON_EVENT}) AS e0",
                f"max(ts) FILTER (WHERE {NON_EVENT}) AS e1",
            ]
        if _hostnames(q):  # the hostnames of its first and last pageviews
            columns += [
                f"{d.arg_min('hostname', '(ts, hostname)')} FILTER (WHERE name = 'pageview')"
                " AS entry_page_hostname",
                f"{d.arg_max('hostname', '(ts, hostname)')} FILTER (WHERE name = 'pageview')"
                " AS exit_page_hostname",
            ]
        if q.bounce_entry:
            # Whether the visit entered on the filtered page (the entry page is on each of
            # its events), named apart from events.entry_page, which hits' filters read.
            columns.append(f"{d.bool_or(filter_sql(sql, q.bounce_entry))} AS entered")
        ctes.append(
            f"sess AS (SELECT session_id, {', '.join(columns)}"
            f" FROM events WHERE {_range(sql, q)} GROUP BY session_id)"
        )
    plan = _plan(sql, q, zone)
    keys = plan.keys
    where = _where(sql, q)
    source = "events LEFT JOIN sess USING (session_id)" if needs_exit else "events"
    select = ", ".join(
        [
            *plan.key_exprs,
            "ts",
            "name",
            "visitor_id",
            "session_id",
            "revenue",
            "engagement_ms",
            "scroll_depth",
            "pathname",
            # What the revenue aggregates' currency FILTER reads (_in_currency).
            *(["currency"] if q.revenue_currency is not None else []),
        ]
    )
    ctes.append(f"hits AS (SELECT {select} FROM {source} WHERE {where})")
    key_list = "".join(f"{k}, " for k in keys)
    having = _having_events(d, q)
    chosen = _EVENT_AGGREGATES_NO_PINGS if _skips_pings(q) else _EVENT_AGGREGATES
    aggregates = _in_currency(
        sql,
        q,
        ", ".join(
            f"{sql_} AS {metric}"
            for metric, sql_ in chosen.items()
            if metric in _event_needs(q.metrics)
        ),
    )
    ctes.append(
        f"ev AS (SELECT {key_list}{aggregates or 'count(*) AS n'} FROM hits GROUP BY ALL{having})"
    )
    joins = []
    if needs_sessions:
        bounced = "pv <= 1 AND ic = 0"
        entered = ""
        if q.bounce_entry is not None:  # only visits that entered on the filtered page
            bounced += " AND entered"
            entered = " count(*) FILTER (WHERE entered) AS bounce_visits,"
        # Plausible's visit duration (event_span): whole seconds, as its timestamps are.
        spans = (
            f", sum({d.epoch(d.trunc('second', 'e1'))} - {d.epoch(d.trunc('second', 'e0'))})"
            " AS event_duration"
            if event_span
            else ""
        )
        ctes.append(
            f"vs AS (SELECT {key_list}count(*) AS visits,"
            f" count(*) FILTER (WHERE {bounced}) AS bounces,{entered}"
            f" sum({d.epoch('t1')} - {d.epoch('t0')}) AS duration,"
            f" sum(pv) AS session_pageviews{spans}"
            f" FROM (SELECT DISTINCT {key_list}session_id FROM hits WHERE {NON_EVENT})"
            " JOIN sess USING (session_id) GROUP BY ALL)"
        )
        joins.append(f"LEFT JOIN vs ON {_on('ev', 'vs', keys)}")
    if {"scroll_depth", "scroll_sum", "scroll_count"} & set(q.metrics):
        ctes.append(
            f"sd AS (SELECT {key_list}avg(m) AS scroll, sum(m) AS scroll_sum,"
            f" count(m) AS scroll_count FROM (SELECT {key_list}visitor_id,"
            " pathname, max(scroll_depth) AS m FROM hits"
            " WHERE name = 'engagement' AND scroll_depth IS NOT NULL"
            " GROUP BY ALL) GROUP BY ALL)"
        )
        joins.append(f"LEFT JOIN sd ON {_on('ev', 'sd', keys)}")
    if "conversion_rate" in q.metrics:
        ctes.append(_totals_cte(sql, q, plan, zone, source))
        tot_keys = _totals_keys(q, plan)
        joins.append(f"LEFT JOIN tot ON {_on('ev', 'tot', tot_keys)}")
    metric_sql = dict(_metric_sql(d))
    if not q.pings_in_visits:
        metric_sql["visit_duration"] = VISIT_DURATION_WITHOUT_PINGS
    if q.bounce_entry is not None:
        metric_sql["bounce_rate"] = "coalesce(100.0 * vs.bounces / nullif(vs.bounce_visits, 0), 0)"
        metric_sql["bounce_visits"] = "coalesce(vs.bounce_visits, 0)"
    metrics = ", ".join(f"{metric_sql[m]} AS {m}" for m in q.metrics)
    order = _order_sql(d, q, keys)
    outputs = "".join(f"{_key_out(d, k)}, " for k in keys)
    text = (
        f"WITH {', '.join(ctes)} SELECT {outputs}{metrics}, {_total_rows(q)}"
        f" FROM ev {' '.join(joins)} ORDER BY {order}"
    )
    if q.limit is not None:
        text += f" LIMIT {sql.bind(q.limit)} OFFSET {sql.bind(q.offset)}"
    return Compiled(text, sql.params, keys)


# visit_duration when engagement pings don't lengthen visits (Query.pings_in_visits).
VISIT_DURATION_WITHOUT_PINGS = "coalesce(vs.event_duration / nullif(vs.visits, 0), 0)"


def _hostnames(q: Query) -> bool:
    """Whether a visit's entry or exit page hostname is grouped or filtered by."""
    dims = set(q.properties)
    for tree in q.filters:
        dims |= filter_dimensions(tree)
    return bool({"entry_page_hostname", "exit_page_hostname"} & dims)


def _in_currency(sql: Sql, q: Query, text: str) -> str:
    """text with its revenue aggregates restricted to Query.revenue_currency (bound where
    they stand: call it when text takes its place in the statement), or unrestricted."""
    if q.revenue_currency is None:
        return text.replace(CURRENCY_FILTER, "")
    currency, names = q.revenue_currency, q.revenue_events

    def restricted(_: re.Match[str]) -> str:
        where = f"currency = {sql.bind(currency)}"
        if names:
            where += f" AND name IN ({', '.join(sql.bind(n) for n in names)})"
        return f" FILTER (WHERE {where})"

    return re.sub(re.escape(CURRENCY_FILTER), restricted, text)


def _reads_event_duration(q: Query) -> bool:
    """Whether the sessions CTE needs each visit's span without engagement pings."""
    return "event_duration" in q.metrics or (
        "visit_duration" in q.metrics and not q.pings_in_visits
    )


# Metrics computed from event aggregates alone (ev.<aggregate>), with no session, scroll
# or totals CTE to join: what the one-SELECT plan answers.
_EVENT_ONLY = frozenset(
    metric
    for metric, expr in _METRIC_SQL.items()
    if set(re.findall(r"\b([a-z]+)\.[a-z_]+", expr)) == {"ev"}
)


def _compile_flat(q: Query, sql: Sql) -> Compiled:
    """Event metrics alone: one SELECT ... GROUP BY over events, the aggregates written in
    place of ev's columns (the CTE plan's layers cost ~1 ms of planning, which is most of a
    small site's answer). The same rows as the CTE plan, in the same order."""
    dialect = sql.d
    zone = ZoneInfo(q.period.timezone)
    keys = tuple(f"d{i}" for i in range(len(q.properties)))
    outputs, groups = [], list(keys)
    for i, dim in enumerate(q.properties):  # text order: the select list's values first
        outputs.append(f"{dimension_expr(sql, dim)} AS d{i}")
    if q.interval is not None:
        keys += ("bucket",)
        bucket = bucket_expr(sql, q, zone)
        if bucket == "day":  # group by the DATE, cast the ~30 results, not every event
            outputs.append(f"{dialect.timestamp('day')} AS bucket")
            groups.append("day")
        else:
            outputs.append(f"{bucket} AS bucket")
            groups.append("bucket")
    chosen = _EVENT_AGGREGATES_NO_PINGS if _skips_pings(q) else _EVENT_AGGREGATES
    for metric in q.metrics:
        expr = re.sub(
            r"\bev\.(\w+)", lambda m: f"({chosen[m.group(1)]})", _metric_sql(dialect)[metric]
        )
        outputs.append(f"{_in_currency(sql, q, expr)} AS {metric}")
    if not keys:
        # One row, always: no window, no grouping, no order to plan (~1 ms of a small
        # site's answer).
        outputs.append("1 AS total_rows")
        return Compiled(
            f"SELECT {', '.join(outputs)} FROM events WHERE {_where(sql, q)}", sql.params, keys
        )
    outputs.append(_total_rows(q))
    text = f"SELECT {', '.join(outputs)} FROM events WHERE {_where(sql, q)}"
    text += f" GROUP BY {', '.join(groups)}{_having_events(dialect, q)}"
    text += f" ORDER BY {_order_sql(dialect, q, keys, prefix='')}"
    if q.limit is not None:
        text += f" LIMIT {sql.bind(q.limit)} OFFSET {sql.bind(q.offset)}"
    return Compiled(text, sql.params, keys)


def _compile_by_session(q: Query, sql: Sql) -> Compiled:
    """Visit-only questions in one pass: events -> sessions -> rows (compile_sessions.py)."""
    dialect = sql.d
    keys = tuple(f"d{i}" for i in range(len(q.properties)))
    # Text order: the select list (dimensions) comes before the WHERE clause's values.
    dims = "".join(
        f", any_value({dimension_expr(sql, d)}) AS d{i}" for i, d in enumerate(q.properties)
    )
    exprs = compile_sessions.metric_exprs(q)
    cte = compile_sessions.session_cte(
        dialect,
        q.metrics,
        dims,
        _range(sql, q),
        [filter_sql(sql, t) for t in q.filters],
        NON_EVENT,
        INTERACTIVE,
        exprs,
    )
    metrics = ", ".join(f"{exprs[m]} AS {m}" for m in q.metrics)
    if not keys:
        # One row, always (an aggregate over no sessions is zeros): no window, no
        # grouping, no order to plan (~1 ms of a small site's answer).
        return Compiled(f"WITH {cte} SELECT {metrics}, 1 AS total_rows FROM s", sql.params, keys)
    text = (
        f"WITH {cte} SELECT {''.join(f'{k}, ' for k in keys)}{metrics},"
        f" {_total_rows(q)} FROM s GROUP BY ALL"
        f" ORDER BY {_order_sql(dialect, q, keys, prefix='')}"
    )
    if q.limit is not None:
        text += f" LIMIT {sql.bind(q.limit)} OFFSET {sql.bind(q.offset)}"
    return Compiled(text, sql.params, keys)


def _total_rows(q: Query) -> str:
    """The rows the question has before paging: a window over the result when a page is
    cut from it; without LIMIT every row comes back and run.py counts them (no window)."""
    return "count(*) OVER () AS total_rows" if q.limit is not None else "0 AS total_rows"


def _totals_keys(q: Query, plan: _Plan) -> tuple[str, ...]:
    # A goal's rate per visit attribute is against that attribute's visitors; per event
    # property (event name, page) it is against all visitors.
    kept = [
        f"d{i}"
        for i, d in enumerate(q.properties)
        if d not in EVENT_PROPERTIES and not d.startswith("prop:")
    ]
    return (*kept, *(k for k in plan.keys if k == "bucket"))


def _totals_cte(sql: Sql, q: Query, plan: _Plan, zone: ZoneInfo, source: str) -> str:
    """Visitors per kept key for a conversion rate's denominator, over `source` (events,
    joined to the sessions when an exit page is grouped or filtered by)."""
    keys = _totals_keys(q, plan)
    exprs = []
    for i, dim in enumerate(q.properties):
        if f"d{i}" in keys:
            exprs.append(f"{dimension_expr(sql, dim)} AS d{i}")
    if "bucket" in keys:
        exprs.append(f"{bucket_expr(sql, q, zone)} AS bucket")
    goal_free = [
        t
        for t in q.filters
        if not (EVENT_PROPERTIES & filter_dimensions(t))
        and not any(d.startswith("prop:") for d in filter_dimensions(t))
    ]
    where = [_range(sql, q), NON_EVENT, *(filter_sql(sql, t) for t in goal_free)]
    select = "".join(f"{e}, " for e in exprs)
    return (
        f"tot AS (SELECT {select}count(DISTINCT visitor_id) AS visitors FROM {source}"
        f" WHERE {' AND '.join(where)} GROUP BY ALL)"
    )


def _order_sql(d: Dialect, q: Query, keys: tuple[str, ...], prefix: str = "ev.") -> str:
    """The ORDER BY terms over a select list of the keys, then the metrics."""

    def key(name: str) -> str:
        return d.order_column(f"{prefix}{name}", keys.index(name) + 1)

    terms = []
    dims = {dim: key(f"d{i}") for i, dim in enumerate(q.properties)}
    for order in q.order_by:
        if order.key in q.metrics:
            column = d.order_column(order.key, len(keys) + q.metrics.index(order.key) + 1)
        elif order.key in dims:
            column = dims[order.key]
        elif order.key.startswith("time") and "bucket" in keys:
            column = key("bucket")
        else:
            raise InvalidRequest(
                f"cannot order by {order.key!r}: not a requested metric or dimension"
            )
        nulls = "FIRST" if order.nulls_first else "LAST"
        terms.append(f"{column} {'DESC' if order.descending else 'ASC'} NULLS {nulls}")
    if not q.order_by and q.metrics and "bucket" not in keys:
        terms.append(f"{d.order_column(q.metrics[0], len(keys) + 1)} DESC")
    for name in keys:  # tie-breaks, unless already ordered by
        column = key(name)
        if not any(term.startswith(f"{column} ") for term in terms):
            terms.append(f"{column} ASC NULLS LAST")
    return ", ".join(terms) or "1"
