"""Plausible v2's refusals, word for word: its JSON schema's errors ("#/path: ...", several
joined by newlines) and its query parser's (lib/plausible/stats/query_parser.ex,
table_decider.ex), checked in the order Plausible checks them, on the body as sent. Only
the v2 surface calls this; what passes is then parsed by plausible.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from app.errors import InvalidRequest

# The public schema's metrics that Avocet answers (others are "Invalid metric").
METRIC_NAMES = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "conversion_rate",
    "scroll_depth",
    "time_on_page",
    "total_revenue",
    "average_revenue",
    "group_conversion_rate",
    "percentage",
)
EVENT_PROPS = ("name", "page", "hostname", "goal")
# Plausible's visit:* dimensions that Avocet stores or computes per visit (its
# country_name, region_name and city_name are not kept).
VISIT_PROPS = (
    "entry_page",
    "exit_page",
    "entry_page_hostname",
    "exit_page_hostname",
    "source",
    "referrer",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "device",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "country",
    "region",
    "city",
    "screen",
)
# "time:minute" is an Avocet extension (the dashboard's realtime view); Plausible's public
# schema refuses it.
TIME_DIMENSIONS = ("time", "time:minute", "time:hour", "time:day", "time:week", "time:month")
DATE_SHORTHANDS = ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all")
FILTER_OPS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
_CASE_OPS = ("is", "is_not", "contains", "contains_not")
_GOAL_OPS = ("is", "contains")  # the schema's filter_entry for event:goal
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?"
_OFFSET = r"(Z|[+-](0\d|1\d|2[0-3]):[0-5]\d)?"
# Table decider (table_decider.ex): metrics only one table answers.
SESSION_ONLY_METRICS = ("bounce_rate", "visit_duration", "views_per_visit")
EVENT_ONLY_METRICS = (
    "total_revenue",
    "average_revenue",
    "scroll_depth",
    "pageviews",
    "events",
    "time_on_page",
)
SESSION_ONLY_DIMENSIONS = (
    "visit:entry_page",
    "visit:exit_page",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
)
GOALS_DOCS = "https://plausible.io/docs/stats-api#filtering-by-goals"


def inspect(value: Any) -> str:
    """Elixir's inspect/1 of a decoded JSON value, as Plausible's messages print them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "%{" + ", ".join(f"{inspect(k)} => {inspect(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _type_name(value: Any) -> str:
    kinds = ((bool, "Boolean"), (str, "String"), (int, "Integer"), (float, "Number"))
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    if isinstance(value, list):
        return "Array"
    return "Object" if isinstance(value, dict) else "Null"


def is_dimension(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith("event:props:"):
        return len(name) > len("event:props:")
    if name.startswith("event:"):
        return name[6:] in EVENT_PROPS
    return name.startswith("visit:") and name[6:] in VISIT_PROPS


def _valid_filter(raw: Any, depth: int = 0) -> bool:
    """The schema's filter_entry: a leaf, or and / or / not of filters. depth bounds the
    recursion (plausible.py refuses deeper trees with its own message)."""
    if depth > 10:
        return True  # plausible.py refuses trees this deep with its own message
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        return False
    op = raw[0]
    if op in ("and", "or"):
        return (
            len(raw) == 2
            and isinstance(raw[1], list)
            and bool(raw[1])
            and all(_valid_filter(c, depth + 1) for c in raw[1])
        )
    if op == "not":
        return len(raw) == 2 and _valid_filter(raw[1], depth + 1)
    if op not in FILTER_OPS or len(raw) not in (3, 4) or not is_dimension(raw[1]):
        return False
    if raw[1] == "event:goal" and op not in _GOAL_OPS:
        return False
    values = raw[2]
    if not isinstance(values, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in values
    ):
        return False
    if len(raw) == 4:
        modifiers = raw[3]
        return (
            op in _CASE_OPS
            and isinstance(modifiers, dict)
            and set(modifiers) <= {"case_sensitive"}
            and isinstance(modifiers.get("case_sensitive", True), bool)
        )
    return True


def _valid_date_range(value: Any) -> bool:
    if isinstance(value, str):
        return bool(re.fullmatch(r"day|24h|month|year|all|\d+d|\d+mo", value))
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        return False
    if all(re.fullmatch(_DATE, v) for v in value):
        return True
    return all(re.fullmatch(_DATETIME + _OFFSET, v) for v in value)


# The schema's objects and their keys (additionalProperties: false). include.comparisons
# is in the schema Plausible's own dashboard queries with (its internal API, the same
# QueryParser); Avocet's v2 answers it too.
_KEYS = {
    "": (
        "site_id",
        "metrics",
        "date_range",
        "dimensions",
        "filters",
        "order_by",
        "include",
        "pagination",
    ),
    "include": ("time_labels", "imports", "total_rows", "comparisons"),
    "pagination": ("limit", "offset"),
}
_EXTRA = "Schema does not allow additional properties."


def _valid_comparisons(value: Any) -> bool:
    """The schema's include.comparisons (oneOf): {"mode": "previous_period" |
    "year_over_year"} or {"mode": "custom", "date_range": [from, to]}, each with an optional
    boolean match_day_of_week and nothing else. null is no comparison."""
    if value is None:
        return True
    if not isinstance(value, dict) or not isinstance(value.get("match_day_of_week", True), bool):
        return False
    mode = value.get("mode")
    if mode in ("previous_period", "year_over_year"):
        return set(value) <= {"mode", "match_day_of_week"}
    return (
        mode == "custom"
        and set(value) <= {"mode", "match_day_of_week", "date_range"}
        and "date_range" in value
        and isinstance(value["date_range"], list)
        and _valid_date_range(value["date_range"])
    )


def _object_errors(body: dict[str, Any]) -> Iterator[str]:
    missing = [k for k in ("site_id", "metrics", "date_range") if k not in body]
    if len(missing) == 1:
        yield f"#: Required property {missing[0]} was not present."
    elif missing:
        yield f"#: Required properties {', '.join(missing)} were not present."
    for part, keys in _KEYS.items():
        value = body.get(part, {}) if part else body
        if isinstance(value, dict):
            prefix = f"#/{part}/" if part else "#/"
            yield from (f"{prefix}{k}: {_EXTRA}" for k in value if k not in keys)


def _schema_errors(body: dict[str, Any]) -> Iterator[str]:
    yield from _object_errors(body)
    metrics = body.get("metrics")
    if "metrics" in body:
        if not isinstance(metrics, list):
            yield f"#/metrics: Type mismatch. Expected Array but got {_type_name(metrics)}."
        elif not metrics:
            yield "#/metrics: Expected a minimum of 1 items but got 0."
        else:
            for i, name in enumerate(metrics):
                if name not in METRIC_NAMES:
                    yield f"#/metrics/{i}: Invalid metric {inspect(name)}"
            if len({inspect(m) for m in metrics}) != len(metrics):
                yield "#/metrics: Expected items to be unique but they were not."
    if "date_range" in body and not _valid_date_range(body["date_range"]):
        yield f"#/date_range: Invalid date range {inspect(body['date_range'])}"
    yield from _list_errors(body, "dimensions", _dimension_error)
    yield from _list_errors(body, "filters", _filter_error)
    yield from _order_by_errors(body.get("order_by"))
    include = body.get("include", {})
    if not isinstance(include, dict):
        yield f"#/include: Type mismatch. Expected Object but got {_type_name(include)}."
    elif "comparisons" in include and not _valid_comparisons(include["comparisons"]):
        yield (
            "#/include/comparisons: Expected exactly one of the schemata to match, but none of"
            " them did."
        )
    pagination = body.get("pagination", {})
    if isinstance(pagination, dict):
        yield from _pagination_errors(pagination)


def _list_errors(body: dict[str, Any], key: str, item_error: Any) -> Iterator[str]:
    items = body.get(key, [])
    if not isinstance(items, list):
        yield f"#/{key}: Type mismatch. Expected Array but got {_type_name(items)}."
        return
    for i, item in enumerate(items):
        error = item_error(item)
        if error:
            yield f"#/{key}/{i}: {error}"
    if key == "dimensions" and len({inspect(d) for d in items}) != len(items):
        yield "#/dimensions: Expected items to be unique but they were not."


def _dimension_error(name: Any) -> str | None:
    if name in TIME_DIMENSIONS or is_dimension(name):
        return None
    return f"Invalid dimension {inspect(name)}"


def _filter_error(raw: Any) -> str | None:
    if _valid_filter(raw):
        return None
    shown = inspect(raw)  # whole, as Plausible's; a 60 KB filter is not echoed whole
    return f"Invalid filter {shown if len(shown) <= 1000 else shown[:1000] + '...'}"


def _order_by_errors(order_by: Any) -> Iterator[str]:
    if order_by is None:
        return
    if not isinstance(order_by, list):
        yield f"#/order_by: Type mismatch. Expected Array but got {_type_name(order_by)}."
        return
    for i, entry in enumerate(order_by):
        if not isinstance(entry, list) or len(entry) != 2:
            yield f"#/order_by/{i}: Invalid value in order_by {inspect(entry)}"
            continue
        value, direction = entry
        if value not in METRIC_NAMES and value not in TIME_DIMENSIONS and not is_dimension(value):
            yield f"#/order_by/{i}/0: Invalid value in order_by {inspect(value)}"
        if direction not in ("asc", "desc"):
            yield f"#/order_by/{i}/1: Invalid value in order_by {inspect(direction)}"


def _pagination_errors(pagination: dict[str, Any]) -> Iterator[str]:
    for key, low, high in (("limit", 1, 10_000), ("offset", 0, None)):
        value = pagination.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool):
            kind = _type_name(value)
            yield f"#/pagination/{key}: Type mismatch. Expected Integer but got {kind}."
        elif value < low:
            yield f"#/pagination/{key}: Expected the value to be >= {low}"
        elif high is not None and value > high:
            yield f"#/pagination/{key}: Expected the value to be <= {high}"


def check_schema(body: Any) -> None:
    """Plausible's JSON schema errors for a v2 body (all of them, one per line)."""
    if not isinstance(body, dict):
        return  # left to the body decoder's message
    errors = list(_schema_errors(body))
    if errors:
        raise InvalidRequest("\n".join(errors))


def _nested_dimensions(raw: list[Any], depth: int = 0) -> Iterator[tuple[str, int]]:
    """(dimension, depth) of each leaf of a filter the schema accepted."""
    if raw[0] in ("and", "or"):
        for clause in raw[1]:
            yield from _nested_dimensions(clause, depth + 1)
    elif raw[0] == "not":
        yield from _nested_dimensions(raw[1], depth + 1)
    else:
        yield raw[1], depth


def _leaf_errors(raw: list[Any]) -> Iterator[str]:
    """query_parser.ex parse_clauses_list: integers only for visit:city, 2-letter codes
    for an is / is_not on visit:country."""
    if raw[0] in ("and", "or"):
        for clause in raw[1]:
            yield from _leaf_errors(clause)
        return
    if raw[0] == "not":
        yield from _leaf_errors(raw[1])
        return
    op, key, values = raw[0], raw[1], raw[2]
    strings = all(isinstance(v, str) for v in values)
    if not strings and not (key == "visit:city" and all(isinstance(v, int) for v in values)):
        yield f"Invalid filter '{inspect(raw)}'."
    elif key == "visit:country" and op in ("is", "is_not") and any(len(v) != 2 for v in values):
        yield (
            "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code."
        )


def _ticked(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def check_query(body: dict[str, Any], goal_names: set[str]) -> None:
    """Plausible's query parser refusals (after the schema), the first one found."""
    for error in _query_errors(body, goal_names):
        raise InvalidRequest(error)


def _query_errors(body: dict[str, Any], goal_names: set[str]) -> Iterator[str]:
    date_range = body.get("date_range")
    if isinstance(date_range, str) and date_range not in DATE_SHORTHANDS:
        yield f"Invalid date_range {inspect(date_range)}"  # a valid shape Avocet lacks
    # Plausible refuses date-times without an offset ('Invalid date_range ...'); Avocet
    # reads them in the site's zone (an extension kept for existing clients).
    metrics: list[str] = body.get("metrics", [])
    dims: list[str] = body.get("dimensions", [])
    filters: list[Any] = body.get("filters", [])
    for raw in filters:
        yield from _leaf_errors(raw)
    for value, direction in body.get("order_by") or []:
        if value not in metrics and value not in dims:
            shown = f":{value}" if value in METRIC_NAMES else inspect(value)
            yield (
                f"Invalid order_by entry '{{{shown}, :{direction}}}'. Entry is not a queried"
                " metric or dimension."
            )
    nested = [d for raw in filters for d, depth in _nested_dimensions(raw) if depth > 0]
    if any(d in ("event:goal", "event:hostname") for d in nested):
        yield f"Invalid filters. Dimension `{nested[0]}` can only be filtered at the top level."
    special = {"conversion_rate", "group_conversion_rate"} & set(metrics)
    if special and any(d.startswith("event:props:") for d in nested):
        yield (
            "Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are"
            " used, custom property filters can only be used on top level."
        )
    yield from _goal_errors(filters, goal_names)
    yield from _metric_errors(metrics, dims, filters)
    include = body.get("include") or {}
    if include.get("time_labels") and not any(d in TIME_DIMENSIONS for d in dims):
        yield "Invalid include.time_labels: requires a time dimension."


def _goal_errors(filters: list[Any], goal_names: set[str]) -> Iterator[str]:
    for raw in filters:
        if raw[0] != "is" or raw[1] != "event:goal":
            continue
        loose = len(raw) == 4 and raw[3].get("case_sensitive") is False
        known = {n.lower() for n in goal_names} if loose else goal_names
        for name in raw[2]:
            if (str(name).lower() if loose else name) not in known:
                yield (
                    f"Invalid filters. The goal `{name}` is not configured for this site."
                    f" Find out how to configure goals here: {GOALS_DOCS}"
                )


def _metric_errors(metrics: list[str], dims: list[str], filters: list[Any]) -> Iterator[str]:
    used = [d for raw in filters for d, _ in _nested_dimensions(raw)]
    toplevel = [raw[1] for raw in filters if raw[0] not in ("and", "or", "not")]
    for metric in metrics:
        if metric == "conversion_rate" and "event:goal" not in dims + used:
            yield f"Metric `{metric}` can only be queried with event:goal filters or dimensions."
        if metric in ("scroll_depth", "time_on_page") and "event:page" not in dims + toplevel:
            yield f"Metric `{metric}` can only be queried with event:page filters or dimensions."
        if metric == "views_per_visit" and "event:page" in used:
            yield f"Metric `{metric}` cannot be queried with a filter on `event:page`."
        if metric == "views_per_visit" and dims:
            yield f"Metric `{metric}` cannot be queried with `dimensions`."
    event_dims = [d for d in dims if d.startswith("event:")]
    session_dims = [d for d in dims if d in SESSION_ONLY_DIMENSIONS]
    session_metrics = [m for m in metrics if m in SESSION_ONLY_METRICS]
    event_metrics = [m for m in metrics if m in EVENT_ONLY_METRICS]
    if event_dims == ["event:page"]:
        return  # QueryOptimizer.split_sessions_query answers it
    if session_metrics and event_dims:
        yield (
            f"Session metric(s) {_ticked(session_metrics)} cannot be queried along with event"
            f" dimension(s) {_ticked(event_dims)}"
        )
    if event_metrics and session_dims:
        yield (
            f"Event metric(s) {_ticked(event_metrics)} cannot be queried along with session"
            f" dimension(s) {_ticked(session_dims)}"
        )
