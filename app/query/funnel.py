"""Funnels (SPEC §7, as Plausible's): how many visitors of a period went through a
funnel's goals in order. A visitor reaches step k when, within 24 hours after one of their
step-1 events, they triggered step 2, then step 3, ... then step k, each strictly later
than the one before (other events may come between). Counted from raw events, in one
statement on either engine: per step-1 event, the earliest next step inside the window,
step after step (the earliest is never worse for reaching the next one).

Visitor ids rotate with each day's salt, so, as in Plausible, a funnel crossing the
site's midnight counts its visitor as two."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.query.compile import NON_EVENT
from app.query.compile_terms import Sql, filter_sql
from app.query.goals import goal_filter
from app.query.periods import Period
from app.query.run import dialect_of, execute_sql
from app.storage.funnels import Funnel
from app.storage.store import Store

WINDOW_S = 86_400


@dataclass(frozen=True)
class Step:
    name: str
    visitors: int
    conversion_rate: float  # of the visitors who entered (step 1), in %
    conversion_rate_step: float  # of the step before, in %
    dropoff: int  # visitors of the step before who didn't reach this one
    dropoff_percentage: float


def _percent(part: int, whole: int) -> float:
    return round(part / whole * 100, 2) if whole else 0.0


def funnel_sql(sql: Sql, site_id: str, period: Period, funnel: Funnel) -> str:
    """The statement: rows (step, visitors), step 0 the period's visitors."""
    d = sql.d
    conditions = [
        goal_filter([g.name], {g.name: (g.kind, g.value)}, strict=True) for g in funnel.steps
    ]
    # Bound in text order (DuckDB's `?`): the flags, then the range, then the filter.
    flags = ", ".join(f"({filter_sql(sql, c)}) AS m{i}" for i, c in enumerate(conditions, 1))
    rng = (
        f"site_id = {sql.bind(site_id)} AND ts >= {sql.bind(period.start)}"
        f" AND ts < {sql.bind(period.end)}"
    )
    anyone = " OR ".join(f"({filter_sql(sql, c)})" for c in conditions)
    ctes = [f"ev AS (SELECT visitor_id AS v, ts, {flags} FROM events WHERE {rng} AND ({anyone}))"]
    ctes.append("s1 AS (SELECT v, ts AS t1, ts AS t_1 FROM ev WHERE m1)")
    window = d.seconds(str(WINDOW_S))
    for k in range(2, len(conditions) + 1):
        ctes.append(
            f"s{k} AS (SELECT p.v AS v, p.t1 AS t1, min(e.ts) AS t_{k}"
            f" FROM s{k - 1} AS p JOIN ev AS e ON e.v = p.v"
            f" WHERE e.m{k} AND e.ts > p.t_{k - 1} AND e.ts <= p.t1 + {window}"
            f" GROUP BY p.v, p.t1)"
        )
    everyone = (
        f"SELECT 0 AS step, count(DISTINCT visitor_id) AS n FROM events"
        f" WHERE site_id = {sql.bind(site_id)} AND ts >= {sql.bind(period.start)}"
        f" AND ts < {sql.bind(period.end)} AND {NON_EVENT}"
    )
    reached = [
        f"SELECT {k} AS step, count(DISTINCT v) AS n FROM s{k}"
        for k in range(1, len(conditions) + 1)
    ]
    return "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join([everyone, *reached])


def funnel_answer(store: Store, site_id: str, period: Period, funnel: Funnel) -> dict[str, Any]:
    """A funnel's numbers over the period (blocking: run it off the loop)."""
    sql = Sql(dialect_of(store))
    text = funnel_sql(sql, site_id, period, funnel)
    counts = {int(step): int(n) for step, n in execute_sql(store, text, sql.params)}
    everyone, entered = counts.get(0, 0), counts.get(1, 0)
    steps: list[Step] = []
    before = None
    for k, goal in enumerate(funnel.steps, 1):
        n = counts.get(k, 0)
        drop = 0 if before is None else before - n
        steps.append(
            Step(
                name=goal.name,
                visitors=n,
                conversion_rate=_percent(n, entered),
                conversion_rate_step=_percent(n, entered if before is None else before),
                dropoff=drop,
                dropoff_percentage=_percent(drop, before or 0),
            )
        )
        before = n
    return {
        "all_visitors": everyone,
        "entering_visitors": entered,
        "entering_visitors_percentage": _percent(entered, everyone),
        "never_entering_visitors": everyone - entered,
        "never_entering_visitors_percentage": _percent(everyone - entered, everyone),
        "steps": [step.__dict__ for step in steps],
    }
