"""Plausible's Stats API v1 (GET /api/v1/stats/aggregate | timeseries | breakdown under the
Plausible base path) -> the V2Request the v2 surface answers, and its results back to v1's
shapes. One engine: v1 is parsed here, checked in Plausible's words (its
external_stats_controller.ex and legacy/legacy_query_builder.ex), then built into a Query by
the v2 step (app/query/plausible.py v2_query), with v2's labels and metric definitions."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from app.errors import InvalidRequest
from app.query.goals import Goals
from app.query.periods import FIRST_YEAR, LAST_YEAR, Period, day_range, previous_period
from app.query.plausible import Include, Pagination, V2Request

Kind = Literal["aggregate", "timeseries", "breakdown"]

DOCS = "https://plausible.io/docs/stats-api"
PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")
INTERVALS = ("day", "month")
METRICS = (
    "visitors",
    "pageviews",
    "events",
    "views_per_visit",
    "visits",
    "bounce_rate",
    "visit_duration",
    "conversion_rate",
    "time_on_page",
)
SESSION_METRICS = ("visits", "bounce_rate", "visit_duration")
EVENT_PROPS = ("event:page", "event:name", "event:goal", "event:hostname")
VISIT_PROPS = tuple(
    f"visit:{name}"
    for name in (
        "source",
        "channel",
        "country",
        "region",
        "city",
        "entry_page",
        "exit_page",
        "referrer",
        "utm_medium",
        "utm_source",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "device",
        "os",
        "os_version",
        "browser",
        "browser_version",
    )
)
# Breakdowns leave out the rows without a value of these (legacy/breakdown.ex
# @filter_dimensions_not); entry and exit pages always have one here.
_NO_EMPTY_ROWS = frozenset(
    {
        "visit:city",
        "visit:country",
        "visit:region",
        *(f"visit:utm_{k}" for k in ("medium", "source", "campaign", "content", "term")),
    }
)
# A version breakdown is by name and version (legacy/breakdown.ex transform_dimensions).
_WITH_NAME = {"visit:browser_version": "visit:browser", "visit:os_version": "visit:os"}
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_PIPE = re.compile(r"(?<!\\)\|")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

MISSING_SITE = "Missing site ID. Please provide the required site_id parameter with your request."
MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
INVALID_KEY = (
    "Invalid API key or site ID. Please make sure you're using a valid API key with access"
    " to the site you've requested."
)


@dataclass
class V1Question:
    """A v1 request as understood: the v2 request it is, and what v1 renders around it."""

    request: V2Request
    period: Period
    metrics: list[str]  # as asked, in order (the v1 answer's keys)
    keys: list[str | None]  # the v1 key of each request.metrics entry (None: not shown)
    kind: Kind
    interval: str | None = None
    prop: str | None = None
    compare: Period | None = None


def _error(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def check_period(params: Mapping[str, str]) -> None:
    period = params.get("period")
    if period is not None and period not in PERIODS:
        raise _error(
            f"Error parsing `period` parameter: invalid period `{period}`. Please find"
            f" accepted values in our docs: {DOCS}#time-periods"
        )


def _iso_day(text: str) -> date | str:
    """A date as Elixir's Date.from_iso8601 reads it, or its error reason."""
    if not _ISO_DAY.fullmatch(text):
        return "invalid_format"
    try:
        return date.fromisoformat(text)
    except ValueError:
        return "invalid_date"


def check_date(params: Mapping[str, str]) -> None:
    value = params.get("date")
    if params.get("period") == "custom":
        if value is None:
            raise _error(
                "The `date` parameter is required when using a custom period."
                f" See {DOCS}#time-periods"
            )
        parts = value.split(",")
        if len(parts) != 2 or any(isinstance(_iso_day(p.strip()), str) for p in parts):
            raise _error(
                "Invalid format for `date` parameter. When using a custom period, please"
                " include two ISO-8601 formatted dates joined by a comma."
                f" See {DOCS}#time-periods"
            )
        return
    if value is not None:
        day = _iso_day(value)
        if isinstance(day, str):
            raise _error(
                f"Error parsing `date` parameter: {day}. Please specify a valid date in"
                " ISO-8601 format."
            )


def check_interval(params: Mapping[str, str]) -> str | None:
    interval = params.get("interval")
    if interval == "date":  # the legacy name of day
        return "day"
    if interval is not None and interval not in INTERVALS:
        valid = ", ".join(f"`{i}`" for i in INTERVALS)
        raise _error(
            f"Error parsing `interval` parameter: invalid interval `{interval}`."
            f" Valid intervals are {valid}"
        )
    return interval


def valid_property(name: str) -> bool:
    return (
        name in EVENT_PROPS
        or name in VISIT_PROPS
        or (name.startswith("event:props:") and len(name) > len("event:props:"))
    )


def check_property(params: Mapping[str, str]) -> str:
    prop = params.get("property")
    if prop is None:
        raise _error(
            "The `property` parameter is required. Please provide at least one property to"
            " show a breakdown by."
        )
    if prop == "event:hostname":
        raise _error(
            "Property 'event:hostname' is currently not supported for breakdowns.  Please"
            f" provide a valid property for the breakdown endpoint: {DOCS}#properties"
        )
    if not valid_property(prop):
        raise _error(
            f"Invalid property '{prop}'. Please provide a valid property for the breakdown"
            f" endpoint: {DOCS}#properties"
        )
    return prop


def v1_period(params: Mapping[str, str], zone: ZoneInfo, today: date) -> Period:
    """legacy_query_builder.ex put_period: the days of the period, in the site's zone (no
    period: 30d; `date` anchors every preset and defaults to `today`, which Plausible takes
    as the UTC date)."""
    preset = params.get("period") or "30d"
    if preset == "custom":
        first_text, last_text = params["date"].split(",")
        first, last = date.fromisoformat(first_text.strip()), date.fromisoformat(last_text.strip())
        if last < first:
            raise _error("Invalid `date` parameter: the first date is after the second")
        return _period(zone, first, last)
    anchor = date.fromisoformat(params["date"]) if params.get("date") else today
    if not FIRST_YEAR + 1 <= anchor.year <= LAST_YEAR - 1:  # a year's room to shift in
        raise _error(
            f"Invalid `date` parameter: dates must lie between {FIRST_YEAR} and {LAST_YEAR}"
        )
    if preset == "day":
        return _period(zone, anchor, anchor)
    if preset in ("7d", "30d"):  # the N days before the anchor, the anchor left out
        days = int(preset[:-1])
        return _period(zone, anchor - timedelta(days=days), anchor - timedelta(days=1))
    if preset == "month":
        return _period(zone, anchor.replace(day=1), _month_end(anchor))
    months = 5 if preset == "6mo" else 11
    last = _month_end(anchor)
    return _period(zone, _months_back(anchor.replace(day=1), months), last)


def _period(zone: ZoneInfo, first: date, last: date) -> Period:
    if not (first.year >= FIRST_YEAR and last.year <= LAST_YEAR):
        raise _error(
            f"Invalid `date` parameter: dates must lie between {FIRST_YEAR} and {LAST_YEAR}"
        )
    if (last - first).days > 3660:
        raise _error("Invalid `date` parameter: a range may span at most 10 years")
    return day_range("custom", zone, first, last)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _months_back(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def parse_filters(text: str | None) -> list[list[Any]]:
    """legacy_stats_api_filter_parser.ex: `;`-separated `key==value` / `key!=value`, `|`
    alternatives (a list ignores `!=`, as Plausible's does), `*` wildcards; what doesn't
    parse (and a country that isn't two letters) is dropped, as Plausible drops it."""
    found: list[list[Any]] = []
    for raw in (text or "").split(";"):
        parts = [p.strip() for p in re.split("==|!=", raw.strip()) if p.strip() != ""]
        if len(parts) != 2 or not re.search("==|!=", raw):
            continue
        key, value = parts
        if key == "event:goal":
            values = _members(value) if _PIPE.search(value) else [value.replace("\\|", "|")]
            found.append(["is", key, values])
            continue
        negated = "!=" in raw
        if "*" in value:
            item: list[Any] = [
                "matches_wildcard_not" if negated else "matches_wildcard",
                key,
                [value],
            ]
        elif _PIPE.search(value):
            item = ["is", key, _members(value)]
        else:
            item = ["is_not" if negated else "is", key, [value.replace("\\|", "|")]]
        if key == "visit:country" and "*" not in value and any(len(v) != 2 for v in item[2]):
            continue
        found.append(item)
    return found


def _members(value: str) -> list[str]:
    return [v.replace("\\|", "|") for v in _PIPE.split(value)]


def wildcard_regex(pattern: str) -> str:
    """Plausible's page_regex: the text escaped, `|` left as an alternative, `*` and `**`
    any characters, anchored."""
    escaped = re.escape(pattern).replace("\\|", "|").replace("\\*\\*", ".*").replace("\\*", ".*")
    return f"^{escaped}$"


def check_filters(filters: list[list[Any]], goals: Goals) -> None:
    """external_stats_controller.ex validate_filters: goals must be configured, properties
    known."""
    for _, prop, values in filters:
        if prop == "event:goal":
            for name in values:
                if name not in goals:
                    raise _error(
                        _goal_missing(name) + "Find out how to configure goals here:"
                        f" {DOCS}#filtering-by-goals"
                    )
        elif not valid_property(prop):
            raise _error(
                f"Invalid filter property '{prop}'. Please provide a valid filter property:"
                f" {DOCS}#properties"
            )


def _goal_missing(name: str) -> str:
    if name.startswith("Visit "):
        return f"The pageview goal for the pathname `{name[6:]}` is not configured for this site. "
    return f"The goal `{name}` is not configured for this site. "


def _event_only(prop: str) -> bool:
    return prop in ("event:name", "event:goal") or prop.startswith("event:props:")


def check_metrics(text: str | None, dimensions: list[str], filters: list[list[Any]]) -> list[str]:
    """external_stats_controller.ex parse_and_validate_metrics, in its order and words."""
    metrics = (text if text is not None else "visitors").split(",")
    if len(metrics) != len(set(metrics)):
        raise _error("Metrics cannot be queried multiple times.")
    filtered = [f[1] for f in filters]
    for metric in metrics:
        message = _metric_problem(metric, dimensions, filtered)
        if message:
            raise _error(message)
    return metrics


def _metric_problem(metric: str, dims: list[str], filtered: list[str]) -> str | None:
    if metric == "time_on_page":
        if "event:goal" in filtered or "event:name" in filtered:
            which = "event:goal" if "event:goal" in filtered else "event:name"
            return f"Metric `{metric}` cannot be queried when filtering by `{which}`"
        if dims == ["event:page"]:
            return None
        if dims:
            return (
                f"Metric `{metric}` is not supported in breakdown queries (except"
                " `event:page` breakdown)"
            )
        if "event:page" in filtered:
            return None
        return f"Metric `{metric}` can only be queried in a page breakdown or with a page filter."
    if metric == "conversion_rate":
        if dims == ["event:goal"] or "event:goal" in filtered:
            return None
        return f"Metric `{metric}` can only be queried in a goal breakdown or with a goal filter"
    if metric in ("visitors", "pageviews", "events"):
        return None
    if metric == "views_per_visit":
        if "event:page" in filtered:
            return f"Metric `{metric}` cannot be queried with a filter on `event:page`."
        if dims:
            return f"Metric `{metric}` is not supported in breakdown queries."
        return _session_problem(metric, dims, filtered)
    if metric in SESSION_METRICS:
        return _session_problem(metric, dims, filtered)
    return (
        f"The metric `{metric}` is not recognized. Find valid metrics from the documentation:"
        f" {DOCS}#metrics"
    )


def _session_problem(metric: str, dims: list[str], filtered: list[str]) -> str | None:
    if len(dims) == 1 and _event_only(dims[0]):
        return f"Session metric `{metric}` cannot be queried for breakdown by `{dims[0]}`."
    for prop in filtered:
        if _event_only(prop):
            return f"Session metric `{metric}` cannot be queried when using a filter on `{prop}`."
    return None


def _bounded(params: Mapping[str, str], name: str, default: int, high: int | None) -> int:
    value = params.get(name)
    if value is None:
        return default
    number = int(value) if re.fullmatch(r"[+-]?\d+", value) else None
    if number is None or number <= 0 or (high is not None and number > high):
        if name == "limit":
            raise _error(f"Please provide limit as a number between 1 and {MAX_LIMIT}.")
        raise _error("Please provide page as a positive number.")
    return number


def default_interval(params: Mapping[str, str]) -> str:
    """Interval.default_for_period: hours for a day, months for 6mo / 12mo, else days."""
    period = params.get("period") or "30d"
    if period == "day":
        return "hour"
    return "month" if period in ("6mo", "12mo") else "day"


def _v2_filter(item: list[Any]) -> list[Any]:
    op, prop, values = item
    if op.startswith("matches_wildcard"):
        negated = op.endswith("_not")
        return ["matches_not" if negated else "matches", prop, [wildcard_regex(values[0])]]
    return [op, prop, values]


def _order_by(text: str | None) -> list[list[str]]:
    """legacy_query_builder.ex parse_order_by: a JSON list of [key, "asc"|"desc"]; anything
    else is ignored."""
    if not text:
        return []
    try:
        raw = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return []
    if not isinstance(raw, list):
        return []
    return [
        [item[0], item[1]]
        for item in raw
        if isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], str)
        and item[1] in ("asc", "desc")
    ]


def parse_v1(
    kind: Kind, params: Mapping[str, str], goals: Goals, zone: ZoneInfo, today: date
) -> V1Question:
    """A v1 request's parameters -> the v2 request it asks (checks in the controller's
    order: period, date, interval / property, filters, metrics, limit, page)."""
    check_period(params)
    check_date(params)
    interval = check_interval(params) if kind == "timeseries" else None
    prop = check_property(params) if kind == "breakdown" else None
    period = v1_period(params, zone, today)
    filters = parse_filters(params.get("filters"))
    check_filters(filters, goals)
    metrics = check_metrics(params.get("metrics"), [prop] if prop else [], filters)
    limit = _bounded(params, "limit", DEFAULT_LIMIT, MAX_LIMIT) if kind == "breakdown" else 10_000
    page = _bounded(params, "page", 1, None) if kind == "breakdown" else 1
    v2_filters = [_v2_filter(f) for f in filters]
    dimensions: list[str] = []
    order: list[list[str]] | None = None
    # legacy/breakdown.ex: conversion_rate by a visit or event:page/name property is each
    # group's rate (group_conversion_rate); by goal or custom property, the question's.
    grouped = prop is not None and prop != "event:goal" and not prop.startswith("event:props:")
    asked = ["group_conversion_rate" if grouped and m == "conversion_rate" else m for m in metrics]
    keys: list[str | None] = list(metrics)
    if kind == "timeseries":
        interval = interval or default_interval(params)
        dimensions = [f"time:{interval}"]
        order = [[f"time:{interval}", "asc"]]
    elif prop is not None:
        dimensions = [_WITH_NAME[prop], prop] if prop in _WITH_NAME else [prop]
        sort_metric = next((m for m in asked if m != "time_on_page"), None)
        if sort_metric is None:
            asked.append("visitors")
            keys.append(None)  # asked to order by, not shown
            sort_metric = "visitors"
        if prop in _NO_EMPTY_ROWS:
            v2_filters.append(["is_not", prop, ["(not set)"]])
        order = _order_by(params.get("order_by"))
        seen = {o[0] for o in order}
        for default in ([sort_metric, "desc"], [prop, "asc"]):
            if default[0] not in seen and not (prop == "event:goal" and default[0] == prop):
                order.append(default)
    request = V2Request(
        site_id=params.get("site_id", ""),
        metrics=asked,
        date_range=[period.first_day.isoformat(), period.last_day.isoformat()],
        dimensions=dimensions,
        filters=v2_filters,
        order_by=order,
        include=Include(
            imports=params.get("with_imported") == "true", time_labels=kind == "timeseries"
        ),
        pagination=Pagination(limit=limit, offset=(page - 1) * limit),
    )
    compare = None
    if kind == "aggregate" and params.get("compare") == "previous_period":
        compare = previous_period(period)
    return V1Question(request, period, metrics, keys, kind, interval, prop, compare)


# --- rendering -------------------------------------------------------------------------

_WHOLE = ("bounce_rate", "visit_duration")


def aggregate_value(metric: str, value: Any) -> Any:
    """legacy/aggregate.ex: bounce_rate and visit_duration rounded to integers; an empty
    period answers 0 where the engine has no average."""
    if value is None:
        return 0.0 if metric in ("views_per_visit", "conversion_rate") else 0
    if metric in _WHOLE:
        return round(value)
    return value


def change(metric: str, previous: Any, current: Any) -> Any:
    """Plausible's comparison change: conversion_rate in points (one decimal), bounce_rate
    in points (none when there was no bounce rate before), the rest in whole percent."""
    if previous is None or current is None:
        return None
    if metric == "conversion_rate":
        return round(current - previous, 1)
    if metric == "bounce_rate":
        return current - previous if previous > 0 else None
    if previous == 0:
        return 100 if current > 0 else 0
    return round((current - previous) / previous * 100)


def series_value(metric: str, value: Any) -> Any:
    """A time bucket's value: integers for bounce_rate and visit_duration; an empty bucket
    has 0 for counts and rates and no visit_duration (as legacy/timeseries.ex fills it)."""
    if value is None:
        if metric in ("visit_duration", "time_on_page"):
            return None
        return 0.0 if metric in ("views_per_visit", "conversion_rate") else 0
    if metric in _WHOLE:
        return round(value)
    return value


def breakdown_key(dimension: str) -> str:
    """legacy/breakdown.ex result_key: "event:props:plan" -> "plan", "visit:source" ->
    "source"."""
    if dimension.startswith("event:props:"):
        return dimension[len("event:props:") :]
    return dimension.split(":", 1)[1]
