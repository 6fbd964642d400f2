"""Numbers as the APIs print them: rounding, percent change, bucket labels."""

from __future__ import annotations

from typing import Any

ROUNDING = {"bounce_rate": 1, "views_per_visit": 2, "conversion_rate": 2, "revenue": 2}
WHOLE = ("visit_duration", "time_on_page", "scroll_depth")


def metric_value(metric: str, value: Any) -> Any:
    """Counts as ints, rates rounded, durations in whole seconds; None stays None."""
    if value is None:
        return None
    if metric in ROUNDING:
        return round(float(value), ROUNDING[metric])
    if metric in WHOLE:
        return round(float(value))
    return int(value)


def metrics_of(row: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    return {m: metric_value(m, row.get(m)) for m in metrics}


def change(metric: str, current: Any, previous: Any) -> float | int | None:
    """Percent change; bounce rate as a difference in points (as Plausible reports it)."""
    if current is None or previous is None:
        return None
    if metric == "bounce_rate":
        return round(float(current) - float(previous), 1)
    if previous == 0:
        return 0 if current == 0 else 100
    return round((float(current) - float(previous)) / float(previous) * 100, 1)
