"""include.comparisons in v2's answer: each row's "comparison" ({"dimensions", "metrics",
"change"}), as Plausible's query_runner.ex merges its comparison query's rows and
compare.ex computes the change. Both periods are answered by the same engine question
(app/api/plausible_query.py); this only pairs their rendered rows."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.query.model import Query
from app.query.plausible import V2Request, time_label
from app.query.run import bucket_starts

# query_runner.ex empty_metrics (Metrics.default_value): a row the compared period lacks.
_NULL_WHEN_EMPTY = ("total_revenue", "average_revenue", "scroll_depth", "time_on_page")


def compare_rows(
    req: V2Request,
    q: Query,
    cq: Query,
    rows: list[dict[str, Any]],
    against: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """rows (the question's) each with the compared period's row of the same dimensions;
    a time dimension's value is paired by position in the two periods' time labels."""
    time_index = next(
        (i for i, d in enumerate(req.dimensions) if d == "time" or d.startswith("time:")), None
    )
    lookup: dict[Any, Any] = {}
    if time_index is not None and q.interval and cq.interval:
        ours = [time_label(s, q.interval, q.period) for s in bucket_starts(q.period, q.interval)]
        theirs = [
            time_label(s, cq.interval, cq.period) for s in bucket_starts(cq.period, cq.interval)
        ]
        lookup = dict(zip(ours, theirs, strict=False))
    if time_index is not None and len(req.dimensions) == 1:
        # Plausible appends the series' empty buckets after the rows its query found.
        rows = [r for r in rows if any(r["metrics"])] + [r for r in rows if not any(r["metrics"])]
    index = {_key(r["dimensions"]): r["metrics"] for r in against}
    empty = [None if m in _NULL_WHEN_EMPTY else 0 for m in req.metrics]
    answered = []
    for row in rows:
        dims = [
            lookup.get(value) if i == time_index else value
            for i, value in enumerate(row["dimensions"])
        ]
        metrics = index.get(_key(dims), empty)
        change = [
            change_of(metric, old, new)
            for metric, old, new in zip(req.metrics, metrics, row["metrics"], strict=True)
        ]
        comparison = {"dimensions": dims, "metrics": metrics, "change": change}
        answered.append({**row, "comparison": comparison})
    return answered


def _key(dimensions: list[Any]) -> tuple[Any, ...]:
    return tuple(repr(d) for d in dimensions)


def change_of(metric: str, old: Any, new: Any) -> Any:
    """compare.ex calculate_change: conversion_rate's difference in points (one decimal),
    bounce_rate's difference in points (null when there was none before), any other
    metric's percentage change rounded (100 from nothing, 0 from nothing to nothing)."""
    if isinstance(old, dict):  # money: its value
        old = old.get("value")
    if isinstance(new, dict):
        new = new.get("value")
    if old is None or new is None:
        return None
    if metric == "conversion_rate":
        return float(Decimal(repr(float(new - old))).quantize(Decimal("0.1"), ROUND_HALF_UP))
    if metric == "bounce_rate":
        return new - old if old > 0 else None
    if old == 0:
        return 100 if new > 0 else 0
    return _round((new - old) / old * 100)


def _round(value: float) -> int:
    """Elixir's round/1: halves away from zero (Python's round() goes to the even one)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
