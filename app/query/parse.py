"""Native (Aizen-shaped) query-string parameters -> Query; Ovyxa's names are aliases."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

from app.errors import InvalidRequest, UnsupportedQuery
from app.query.compile_imported import decide
from app.query.goals import Goals, goal_filter
from app.query.model import (
    COLUMNS,
    INTERVALS,
    MAX_MINUTE_RANGE,
    METRICS,
    OUTBOUND,
    RAW_ONLY_PROPERTIES,
    Filter,
    FilterTree,
    Order,
    Query,
    filter_dimensions,
)
from app.query.periods import Period, previous_period, resolve_period, year_over_year
from app.storage.meta import zone_named

FILTER_PARAMS = (
    "page",
    "referrer",
    "country",
    "device",
    "browser",
    "os",
    "hostname",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "region",
    "city",
    "entry_page",
    "exit_page",
    "event",
    "screen",
    "browser_version",
    "os_version",
    "currency",
)
BREAKDOWN_PROPERTIES = (*[p for p in COLUMNS if p != "event"], "event")
DEFAULT_BREAKDOWN_METRICS = {"entry_page": "entries", "exit_page": "exits", "exit_link": "clicks"}
OWN_METRICS = {"entries": "entry_page", "exits": "exit_page", "clicks": "exit_link"}
MAX_LIMIT = 1000


def parse_filters(params: Mapping[str, str], goals: Goals | None = None) -> tuple[FilterTree, ...]:
    """`page=/blog/*|/docs` -> is(page, ["/blog/*", "/docs"]); `prop:plan=pro` too;
    `goal=Signup|Visit /pricing` -> the site's goals by display name."""
    found: list[FilterTree] = []
    for name, value in params.items():
        if name == "goal":
            found.append(goal_filter(value.split("|"), goals or {}, strict=True))
        if name in FILTER_PARAMS or (name.startswith("prop:") and len(name) > 5):
            values = tuple(v for v in value.split("|") if v != "")
            if not values:
                raise InvalidRequest(f"filter {name} needs a value")
            found.append(Filter("is", name, values))
    return tuple(found)


def parse_metrics(value: str | None, default: str, prop: str | None = None) -> tuple[str, ...]:
    names = tuple(m.strip() for m in (value or default).split(",") if m.strip())
    if not names:
        raise InvalidRequest("metrics must name at least one metric")
    for name in names:
        if name not in METRICS:
            raise InvalidRequest(f"unknown metric {name!r}; one of {', '.join(METRICS)}")
        own = OWN_METRICS.get(name)
        if own is not None and own != prop:
            raise InvalidRequest(f"metric {name} is only available with property={own}")
    if len(set(names)) != len(names):
        raise InvalidRequest("metrics must not repeat")
    return names


def parse_period(
    params: Mapping[str, str], default_tz: str, now: datetime, first_event_day: date | None
) -> Period:
    """period / from / to (or Ovyxa's date_from / date_to) and timezone."""
    zone = zone_named(params.get("timezone") or default_tz)
    date_from = params.get("from") or params.get("date_from")
    date_to = params.get("to") or params.get("date_to")
    return resolve_period(params.get("period"), zone, now, date_from, date_to, first_event_day)


def comparison_of(params: Mapping[str, str], period: Period) -> Period | None:
    value = params.get("compare")
    if value in (None, "", "false"):
        return None
    if value in ("true", "previous_period"):
        return previous_period(period)
    if value == "year_over_year":
        return year_over_year(period)
    raise InvalidRequest("compare must be previous_period, year_over_year, true or false")


def imports_reach_back(q: Query, today: date, raw_days: int) -> bool:
    """Whether q asks for imported data that can answer it, over days before the raw
    window: then check_raw_window needs the site's rolled-up days to decide."""
    window_start = today - timedelta(days=raw_days - 1)
    return q.include_imports and q.period.first_day < window_start and decide(q).table is not None


def check_raw_window(
    q: Query, today: date, raw_days: int, rolled_days: frozenset[date] | None = None
) -> None:
    """Filtered and hourly questions, and breakdowns by a property rollups don't hold (a
    custom property's too), need raw events, which are kept `raw_days` days.

    But for imported history: with imported data asked for and an imported table that
    answers the question (imports_reach_back), a period reaching back before the window is
    answered when none of its days before the window is rolled up (`rolled_days`, the
    site's): the site's own raw events of those days are all there (typically none: the
    history is the import's), and the imported aggregates answer for the rest."""
    window_start = today - timedelta(days=raw_days - 1)
    if q.period.first_day >= window_start:
        return
    if rolled_days is not None and imports_reach_back(q, today, raw_days):
        first = q.period.first_day
        if not any(first <= day < window_start for day in rolled_days):
            return
    # Rollups hold no custom property's values (keys are open-ended): a breakdown by one
    # over older days would count the raw days alone, silently.
    raw_only = {p for p in q.properties if p in RAW_ONLY_PROPERTIES or p.startswith("prop:")}
    if raw_only:
        raise UnsupportedQuery(
            f"property={min(raw_only)} is only answered inside the {raw_days}-day raw event window"
        )
    if q.filters:
        raise UnsupportedQuery(
            f"filtered queries are only supported inside the {raw_days}-day raw event window"
        )
    if q.revenue_currency is not None or "average_revenue" in q.metrics:
        raise UnsupportedQuery(
            f"revenue in a goal's currency is only answered inside the {raw_days}-day raw"
            " event window"
        )
    if q.interval in ("hour", "minute"):
        raise UnsupportedQuery(f"{q.interval}ly data is only kept for the last {raw_days} days")


def aggregate_query(
    site_id: str, period: Period, params: Mapping[str, str], goals: Goals | None = None
) -> Query:
    metrics = parse_metrics(params.get("metrics"), "visitors")
    filters = parse_filters(params, goals)
    _check_conversion(metrics, filters)
    return Query(site_id=site_id, period=period, metrics=metrics, filters=filters)


def timeseries_query(
    site_id: str, period: Period, params: Mapping[str, str], goals: Goals | None = None
) -> Query:
    metrics = parse_metrics(params.get("metrics"), "visitors,pageviews")
    interval = params.get("interval") or ("hour" if period.rolling or period.days == 1 else "day")
    if interval not in INTERVALS:
        raise InvalidRequest(f"interval must be one of {', '.join(INTERVALS)}")
    if period.rolling and interval not in ("hour", "minute"):
        raise InvalidRequest("period=24h only supports interval=hour or minute")
    if interval == "minute" and period.end - period.start > MAX_MINUTE_RANGE:
        raise InvalidRequest("interval=minute is only available for periods of one day or less")
    filters = parse_filters(params, goals)
    _check_conversion(metrics, filters)
    return Query(
        site_id=site_id,
        period=period,
        metrics=metrics,
        filters=filters,
        dimensions=(f"time:{interval}",),
        order_by=(Order("time", False),),
    )


def breakdown_query(
    site_id: str, period: Period, params: Mapping[str, str], goals: Goals | None = None
) -> Query:
    prop = params.get("property")
    if not prop:
        raise InvalidRequest("property is required")
    if prop not in BREAKDOWN_PROPERTIES and not (prop.startswith("prop:") and len(prop) > 5):
        raise InvalidRequest(f"unknown property {prop!r}")
    default = DEFAULT_BREAKDOWN_METRICS.get(prop, "visitors,pageviews")
    metrics = parse_metrics(params.get("metrics"), default, prop)
    filters = parse_filters(params, goals)
    if prop in ("region", "city") and "country" not in params:
        raise InvalidRequest(f"property={prop} requires a country filter")
    if prop == "exit_link":
        filters = (*filters, Filter("is", "event", (OUTBOUND,)))
    _check_conversion(metrics, filters)
    limit = _int(params.get("limit"), "limit", 100, 1, MAX_LIMIT)
    page = _int(params.get("page_number"), "page_number", 1, 1, 1_000_000)
    return Query(
        site_id=site_id,
        period=period,
        metrics=metrics,
        dimensions=(prop,),
        filters=filters,
        order_by=_sort(params.get("sort"), metrics),
        limit=limit,
        offset=(page - 1) * limit,
    )


def _check_conversion(metrics: tuple[str, ...], filters: tuple[FilterTree, ...]) -> None:
    if "conversion_rate" in metrics and not any("event" in filter_dimensions(f) for f in filters):
        raise InvalidRequest(
            "conversion_rate needs an event filter (the goal), e.g. event=Signup or goal=<name>"
        )


def _sort(value: str | None, metrics: tuple[str, ...]) -> tuple[Order, ...]:
    if not value:
        return (Order(metrics[0], True),)
    metric, _, direction = value.partition(".")
    if metric not in metrics or direction not in ("asc", "desc"):
        raise InvalidRequest("sort must be <metric>.asc or <metric>.desc with a requested metric")
    return (Order(metric, direction == "desc"),)


def _int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an integer") from exc
    if not low <= number <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return number
