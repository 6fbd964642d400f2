"""Plausible Stats API v2 (POST /api/v2/query) -> Query, and its results back to its shape."""

from __future__ import annotations

import reprlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from app.errors import JSON_ERRORS, InvalidRequest
from app.query.goals import Goals, goal_filter
from app.query.model import (
    COLUMNS,
    MAX_MINUTE_RANGE,
    And,
    Filter,
    FilterTree,
    Not,
    Or,
    Order,
    Query,
    filter_dimensions,
)
from app.query.periods import (
    FIRST_YEAR,
    LAST_YEAR,
    Period,
    day_range,
    parse_day,
    resolve_period,
)
from app.query.plausible_check import check_schema
from app.query.plausible_labels import labelled_filter

# Plausible's metric names -> ours.
METRICS = {
    "visitors": "visitors",
    "visits": "visits",
    "pageviews": "pageviews",
    "views_per_visit": "views_per_visit",
    "bounce_rate": "bounce_rate",
    "visit_duration": "visit_duration",
    "events": "events",
    "conversion_rate": "conversion_rate",
    "scroll_depth": "scroll_depth",
    "time_on_page": "time_on_page",
    "total_revenue": "revenue",
    # In the goals' currency (Query.revenue_currency, plausible_money.py), as money objects.
    "average_revenue": "average_revenue",
    # The row's visitors against its group's visitors without the goal and custom property
    # filters: one more question (app/api/plausible_query.py).
    "group_conversion_rate": "visitors",
    # The share of the query's visitors (dimensions dropped): computed from the row's
    # visitors and one more question (app/api/plausible_query.py).
    "percentage": "visitors",
}
EVENT_DIMS = {
    "event:name": "event",
    "event:page": "page",
    "event:hostname": "hostname",
    "event:goal": "event",
}
VISIT_DIMS = {
    f"visit:{name}": name
    for name in COLUMNS
    if name not in ("page", "event", "hostname", "exit_link", "currency")
}
TIME_DIMS = {
    "time": "auto",  # by the range's length, as Plausible: see _time_granularity
    "time:minute": "minute",  # Plausible's dashboard has it; a range of one day at most
    "time:hour": "hour",
    "time:day": "day",
    "time:week": "week",
    "time:month": "month",
}
OPS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
# A filter tree's levels (a leaf is one): each level nests the SQL one deeper, and DuckDB
# refuses expressions ~1,000 deep. Real questions use 2 or 3.
MAX_FILTER_DEPTH = 10
# Conditions in one question: DuckDB's planning time grows faster than their number (300
# and-ed conditions ~0.3 s, 2,000 ~20 s of CPU for one request).
MAX_FILTER_LEAVES = 100
# As far as the native API's pages reach (page_number 10^6 x limit 1000); DuckDB takes an
# OFFSET below 2^63 only.
MAX_OFFSET = 1_000_000_000


class Pagination(msgspec.Struct, forbid_unknown_fields=True):
    limit: int = 10_000
    offset: int = 0


class Include(msgspec.Struct):
    total_rows: bool = False
    time_labels: bool = False
    imports: bool = False
    # {"mode": "previous_period" | "year_over_year" | "custom", "date_range": [from, to],
    # "match_day_of_week": bool}: as Plausible's dashboard asks (plausible_check.py checks it)
    comparisons: dict[str, Any] | None = None


class V2Request(msgspec.Struct, forbid_unknown_fields=True):
    site_id: str
    metrics: list[str]
    date_range: str | list[str]
    dimensions: list[str] = []
    filters: list[Any] = []
    order_by: list[list[str]] | None = None
    include: Include = msgspec.field(default_factory=Include)
    pagination: Pagination = msgspec.field(default_factory=Pagination)


def decode_v2(body: bytes) -> V2Request:
    """The body, refused first as Plausible's schema refuses it (plausible_check.py)."""
    try:
        raw = msgspec.json.decode(body)
        check_schema(raw)
        return msgspec.convert(raw, V2Request)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid request body: {exc}") from exc
    except JSON_ERRORS as exc:
        raise InvalidRequest("Invalid request body: not valid JSON") from exc


def dimension(name: str) -> str:
    """A Plausible dimension -> ours ("visit:source" -> "source", "time:day" -> "time:day")."""
    if name in TIME_DIMS:
        return f"time:{TIME_DIMS[name]}"
    if name in EVENT_DIMS:
        return EVENT_DIMS[name]
    if name in VISIT_DIMS:
        return VISIT_DIMS[name]
    if name.startswith("event:props:") and len(name) > 12:
        return f"prop:{name[12:]}"
    raise InvalidRequest(f"Invalid dimension '{name}'")


def _filter(raw: Any, goals: Goals, depth: int = 1) -> FilterTree:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidRequest(f"Invalid filters: nested deeper than {MAX_FILTER_DEPTH} levels")
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise InvalidRequest(f"Invalid filter '{_shown(raw)}'")
    op = raw[0]
    if op in ("and", "or") and len(raw) == 2 and isinstance(raw[1], list) and raw[1]:
        clauses = tuple(_filter(c, goals, depth + 1) for c in raw[1])
        return And(clauses) if op == "and" else Or(clauses)
    if op == "not" and len(raw) == 2:
        return Not(_filter(raw[1], goals, depth + 1))
    if op in OPS and len(raw) in (3, 4) and isinstance(raw[1], str) and isinstance(raw[2], list):
        values = raw[2]
        if not values or not all(isinstance(v, str | int) for v in values):
            raise InvalidRequest(f"Invalid filter '{_shown(raw)}': values must be a non-empty list")
        case_sensitive = _case_sensitive(raw, op)
        if raw[1] == "event:goal" and op == "is":
            return goal_filter((str(v) for v in values), goals, strict=False, case=case_sensitive)
        if raw[1] == "event:goal":  # contains: the goals whose names contain a value
            return _goals_containing([str(v) for v in values], goals, case_sensitive)
        dim = dimension(raw[1])
        if dim.startswith("time"):
            raise InvalidRequest(
                f"Invalid filter '{_shown(raw)}': time dimensions can't be filtered"
            )
        # Plausible's "is" is exact ("*" is no wildcard there, unlike the native filters).
        exact = {"is": "equals", "is_not": "equals_not"}.get(op, op)
        return labelled_filter(exact, dim, tuple(str(v) for v in values), case_sensitive)
    raise InvalidRequest(f"Invalid filter '{_shown(raw)}'")


def _goals_containing(values: list[str], goals: Goals, case: bool) -> FilterTree:
    fold = (lambda text: text) if case else str.lower
    names = [n for n in goals if any(fold(v) in fold(n) for v in values)]
    if not names:  # no goal matches: nothing converts
        return Filter("equals", "event", ())
    return goal_filter(names, goals, strict=True)


def _leaves(raw: list[Any]) -> int:
    """The conditions of a filter _filter has accepted (so at most MAX_FILTER_DEPTH deep)."""
    if raw[0] in ("and", "or"):
        return sum(_leaves(clause) for clause in raw[1])
    return _leaves(raw[1]) if raw[0] == "not" else 1


# A filter echoed in an error: bounded in depth and length (str() of a list nested ~1,000
# deep raises RecursionError, and a 60 KB filter makes a 60 KB message).
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxstring, _SHOWN.maxother = 4, 10, 80, 80


def _shown(raw: Any) -> str:
    return _SHOWN.repr(raw)


def _case_sensitive(raw: list[Any], op: str) -> bool:
    """A filter's modifiers (its 4th item): {"case_sensitive": bool}, default true; the
    regular expressions take none (a pattern says its own case rules)."""
    if len(raw) == 3:
        return True
    modifiers = raw[3]
    if op.startswith("matches") or not isinstance(modifiers, dict):
        raise InvalidRequest(f"Invalid filter '{_shown(raw)}': modifiers are not valid here")
    unknown = set(modifiers) - {"case_sensitive"}
    if unknown or not isinstance(modifiers.get("case_sensitive", True), bool):
        raise InvalidRequest(
            f"Invalid filter '{_shown(raw)}': the only modifier is case_sensitive (true or false)"
        )
    return bool(modifiers.get("case_sensitive", True))


def date_range(
    value: str | list[str], zone: ZoneInfo, now: datetime, first_day: date | None
) -> Period:
    """Plausible's date_range: a shorthand or [from, to] (dates or ISO datetimes)."""
    if isinstance(value, list):
        if len(value) != 2:
            raise InvalidRequest("Invalid date_range: a custom range is [from, to]")
        if any("T" in v for v in value):
            return _instants(value, zone)
        first = parse_day(value[0], "date_range")
        last = parse_day(value[1], "date_range")
        if last < first:
            raise InvalidRequest("Invalid date_range: to is before from")
        return _within_ten_years(day_range("custom", zone, first, last))
    today = now.astimezone(zone).date()
    shorthand = {
        "day": "today",
        "24h": "24h",
        "7d": "7d",
        "30d": "30d",
        "91d": "90d",
        "month": "mtd",
        "year": "ytd",
        "12mo": "12m",
        "all": "all",
    }
    if value in shorthand:
        return resolve_period(shorthand[value], zone, now, first_event_day=first_day)
    if value == "28d":
        return day_range("28d", zone, today - timedelta(days=27), today)
    if value == "6mo":
        start = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
        return day_range("6mo", zone, start, today)
    raise InvalidRequest(f"Invalid date_range '{value}'")


def _instants(value: list[str], zone: ZoneInfo) -> Period:
    """[from, to] as ISO date-times, both ends included to the second (Plausible's
    "2024-01-01T12:00:00+02:00" .. "2024-01-01T15:59:59+02:00"); without an offset, in the
    site's zone. The days it touches are its local days (bot counts, labels), but only
    events in the instants count: never rollups, as for the rolling 24 hours."""
    bounds = []
    for item in value:
        try:
            at = datetime.fromisoformat(item)
        except ValueError:
            at = None
        if at is None or "T" not in item or not FIRST_YEAR <= at.year <= LAST_YEAR:
            raise InvalidRequest(
                f"Invalid date_range '{value}': from and to must both be ISO8601 date-times"
            )
        local = at if at.tzinfo is not None else at.replace(tzinfo=zone)
        bounds.append(local.astimezone(UTC).replace(tzinfo=None, microsecond=0))
    start, end = bounds[0], bounds[1] + timedelta(seconds=1)
    if end <= start:
        raise InvalidRequest("Invalid date_range: to is before from")
    return _within_ten_years(
        Period(
            preset="custom",
            timezone=zone.key,
            first_day=start.replace(tzinfo=UTC).astimezone(zone).date(),
            last_day=(end - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(zone).date(),
            start=start,
            end=end,
            rolling=True,
        )
    )


def comparison_period(
    comparisons: dict[str, Any], period: Period, zone: ZoneInfo, now: datetime
) -> Period:
    """The period include.comparisons compares with, in whole local days (Plausible's
    comparisons.ex get_comparison_date_range): the previous period of as many days up to
    today, or the same days 365 days before, or a custom range; with match_day_of_week,
    moved to start on the weekday the period starts on."""
    mode = comparisons["mode"]
    if mode == "custom":
        return date_range(comparisons["date_range"], zone, now, None)
    first = period.first_day
    last = min(period.last_day, now.astimezone(zone).date())
    if mode == "year_over_year":
        shift = timedelta(days=-365)
    else:  # previous_period
        shift = timedelta(days=(first - last).days - 1)
    new_first, new_last = first + shift, last + shift
    if comparisons.get("match_day_of_week"):
        moved = _nearest_weekday(first.isoweekday(), new_first, first)
        new_first, new_last = moved, new_last + (moved - new_first)
    if new_last < new_first:  # a range that starts after today: Plausible's is empty
        raise InvalidRequest(
            "Invalid include.comparisons: the date_range starts after today, so it has no"
            " previous period"
        )
    if new_first.year < FIRST_YEAR:
        raise InvalidRequest("Invalid include.comparisons: the period compared with is too early")
    return day_range("custom", zone, new_first, new_last)


def _nearest_weekday(weekday: int, day: date, reject: date) -> date:
    """comparisons.ex shift_to_nearest: `day` if it is on `weekday`, else the next such day
    (Plausible sorts the candidates by a signed distance, so the later one wins) unless that
    is `reject`."""
    if day.isoweekday() == weekday:
        return day
    ahead = (weekday - day.isoweekday()) % 7 or 7
    behind = (day.isoweekday() - weekday) % 7 or 7
    candidates = [day + timedelta(days=ahead), day - timedelta(days=behind)]
    return next(c for c in candidates if c != reject)


def _within_ten_years(period: Period) -> Period:
    if period.days > 3661:  # as the native API's custom ranges
        raise InvalidRequest("Invalid date_range: a range may span at most 10 years")
    return period


def v2_query(request: V2Request, site_id: str, period: Period, goals: Goals | None = None) -> Query:
    if not request.metrics:
        raise InvalidRequest("#/metrics: Expected a minimum of 1 items")
    metrics: list[str] = []
    for name in request.metrics:
        if name not in METRICS:
            raise InvalidRequest(f"Unknown metric '{name}'")
        if METRICS[name] not in metrics:
            metrics.append(METRICS[name])
    if "conversion_rate" in metrics and "visitors" not in metrics:
        metrics.append("visitors")  # its numerator (app/api/plausible_query.py)
    # event:goal as a dimension is answered per goal (plausible_goals.py): the Query
    # leaves it out, its order_by keeps it (as "event").
    goal_dimension = "event:goal" in request.dimensions
    dims = tuple(
        _time_granularity(period) if d == "time:auto" else d
        for d in (dimension(d) for d in request.dimensions if d != "event:goal")
    )
    if "percentage" in request.metrics and not request.dimensions:
        raise InvalidRequest("Metric `percentage` can only be queried with a dimension")
    if sum(d.startswith("time:") for d in dims) > 1:
        raise InvalidRequest("Only one time dimension is allowed")
    if "time:minute" in dims and period.end - period.start > MAX_MINUTE_RANGE:
        raise InvalidRequest(
            "Invalid dimensions: time:minute is only allowed for a date_range of one day or less"
        )
    filters = tuple(_filter(f, goals or {}) for f in request.filters)
    filters += _visit_hostname_filters(filters, request.dimensions)
    entry = _entry_filter(filters)
    if "bounce_rate" in metrics:  # its parts, divided as Plausible's SQL divides them
        parts = ("bounces", "visits" if entry is None else "bounce_visits")
        metrics += [m for m in parts if m not in metrics]
    if sum(_leaves(f) for f in request.filters) > MAX_FILTER_LEAVES:
        raise InvalidRequest(f"Invalid filters: more than {MAX_FILTER_LEAVES} conditions")
    if "conversion_rate" in metrics and not (goal_dimension or _has_goal(filters)):
        raise InvalidRequest("Metric `conversion_rate` can only be queried with event:goal filters")
    page = request.pagination
    if not (1 <= page.limit <= 10_000 and 0 <= page.offset <= MAX_OFFSET):
        raise InvalidRequest(f"Invalid pagination: limit must be 1..10000, offset 0..{MAX_OFFSET}")
    return Query(
        site_id=site_id,
        period=period,
        metrics=tuple(metrics),
        dimensions=dims,
        filters=filters,
        order_by=_order(request.order_by, request, dims),
        limit=page.limit,
        offset=page.offset,
        include_imports=request.include.imports,
        bounce_entry=entry,
        pings_in_visits=False,  # engagement events don't lengthen visits in Plausible
    )


# Plausible's QueryOptimizer.extend_hostname_filters_to_visit: with an event:hostname
# filter, these dimensions also filter the visit's entry (or exit) page hostname, so a visit
# that landed on another hostname keeps its source, referrer and UTM values out.
_HOSTNAME_OF_DIMENSION = {
    "visit:source": "entry_page_hostname",
    "visit:entry_page": "entry_page_hostname",
    "visit:utm_medium": "entry_page_hostname",
    "visit:utm_source": "entry_page_hostname",
    "visit:utm_campaign": "entry_page_hostname",
    "visit:utm_content": "entry_page_hostname",
    "visit:utm_term": "entry_page_hostname",
    "visit:referrer": "entry_page_hostname",
    "visit:exit_page": "exit_page_hostname",
}


def _visit_hostname_filters(
    filters: tuple[FilterTree, ...], dimensions: list[str]
) -> tuple[FilterTree, ...]:
    """The top-level event:hostname filters again, on the visit hostname each dimension
    asked calls for (event:hostname is only allowed at the top level)."""
    targets = dict.fromkeys(
        _HOSTNAME_OF_DIMENSION[d] for d in dimensions if d in _HOSTNAME_OF_DIMENSION
    )
    hostname = [f for f in filters if isinstance(f, Filter) and f.dimension == "hostname"]
    return tuple(
        msgspec.structs.replace(f, dimension=target) for target in targets for f in hostname
    )


def _entry_filter(filters: tuple[FilterTree, ...]) -> Filter | None:
    """Plausible's bounce_rate under an event:page filter: its first top-level page filter,
    applied to the visit's entry page (sql/expression.ex session_metric(:bounce_rate))."""
    for tree in filters:
        if isinstance(tree, Filter) and tree.dimension == "page":
            return msgspec.structs.replace(tree, dimension="entry_page")
    return None


def _has_goal(filters: tuple[FilterTree, ...]) -> bool:
    return any("event" in filter_dimensions(f) for f in filters)


def _order(
    raw: list[list[str]] | None, request: V2Request, dims: tuple[str, ...]
) -> tuple[Order, ...]:
    if not raw:  # Plausible's default: time ascending, then the first metric descending
        times = [Order(d[:4], False) for d in dims if d.startswith("time:")]
        return (*times, Order(METRICS[request.metrics[0]], True))
    found = []
    for item in raw:
        if len(item) != 2 or item[1] not in ("asc", "desc"):
            raise InvalidRequest(f"Invalid order_by entry '{item}'")
        key = METRICS.get(item[0]) or dimension(item[0])
        if key == "conversion_rate" and not any(d.startswith("time:") for d in dims):
            key = "visitors"  # against one total for every row: the same order
        descending = item[1] == "desc"
        if key.startswith("time:"):
            found.append(Order("time", descending))
        else:  # a dimension's missing value is Plausible's "": first when ascending
            is_dimension = key not in METRICS.values()
            found.append(Order(key, descending, nulls_first=is_dimension and not descending))
    return tuple(found)


def time_label(value: datetime, interval: str, period: Period) -> str:
    """Plausible's time dimension values: dates, or "YYYY-MM-DD HH:MM:SS" for hours; a week
    that starts before the range is labelled with the range's first day."""
    if interval in ("hour", "minute"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    day = value.date()
    return max(day, period.first_day).isoformat() if interval == "week" else day.isoformat()


def _time_granularity(period: Period) -> str:
    """Plausible's "time": hours up to 48 hours, days up to 40 days, weeks up to 52 weeks,
    else months (spans measured to the range's last second, whole units)."""
    span = period.end - period.start - timedelta(seconds=1)
    if span < timedelta(hours=49):
        return "time:hour"
    if span < timedelta(days=41):
        return "time:day"
    if span < timedelta(weeks=53):
        return "time:week"
    return "time:month"
