"""Plausible v2's `event:goal` dimension: a row per configured goal (event goals by name,
page goals as "Visit /path", wildcards included) that has conversions, answered by the
one engine as one question per goal (the question with that goal's filter added), merged,
ordered and paged here. Goals are few (a site's handful), so N small questions cost less
than teaching the compiler a goal column."""

from __future__ import annotations

from typing import Any

import msgspec

from app.query.goals import Goals, goal_filter
from app.query.model import Order, Query
from app.query.run import Result

GOAL_KEY = "goal"  # the merged rows' key for the goal's name (render labels nothing)


def goal_questions(q: Query, goals: Goals) -> list[tuple[str, Query]]:
    """(goal name, its question) for each configured goal. q: the question without the
    goal dimension; each goal's question is unordered and unpaged (merged, then paged)."""
    metrics = q.metrics if "events" in q.metrics else (*q.metrics, "events")
    questions = []
    for name in goals:
        filters = (*q.filters, goal_filter([name], goals, strict=True))
        questions.append(
            (
                name,
                msgspec.structs.replace(
                    q, metrics=metrics, filters=filters, order_by=(), limit=None, offset=0
                ),
            )
        )
    return questions


def merge_goal_rows(
    answers: list[tuple[str, Result]], order_by: tuple[Order, ...], limit: int | None, offset: int
) -> Result:
    """The goals' rows as one answer: only rows with conversions (events), in order_by's
    order (stable: ties keep the goals' configured order), one page of them."""
    rows: list[dict[str, Any]] = []
    for name, result in answers:
        rows.extend({**row, GOAL_KEY: name} for row in result.rows if row.get("events"))
    for order in reversed(order_by):
        key = GOAL_KEY if order.key == "event" else order.key
        present = [r for r in rows if r.get(key) is not None]
        present.sort(key=lambda r: r[key], reverse=order.descending)
        absent = [r for r in rows if r.get(key) is None]
        rows = absent + present if order.nulls_first else present + absent
    bots = answers[0][1].bot_hits if answers else None
    end = None if limit is None else offset + limit
    return Result(rows=rows[offset:end], total_rows=len(rows), bot_hits=bots)
