"""One Query value describes every question any API surface can ask."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

import msgspec

from app.query.periods import Period

# Metric names (native names; surfaces translate theirs). Event metrics count events in
# the filtered scope; session metrics look at the whole sessions those events belong to.
EVENT_METRICS = (
    "visitors",
    "pageviews",
    "events",
    "custom_events",
    "revenue",
    "entries",
    "exits",
    "clicks",
)
SESSION_METRICS = ("visits", "views_per_visit", "bounce_rate", "visit_duration")
ENGAGEMENT_METRICS = ("time_on_page", "scroll_depth")
METRICS = (*EVENT_METRICS, *SESSION_METRICS, *ENGAGEMENT_METRICS, "conversion_rate")

# Property -> the column (or expression key) it reads. Visit attributes are copied onto
# every event of a session at ingest, so none of these needs a join.
COLUMNS = {
    "page": "pathname",
    "entry_page": "entry_page",
    "exit_page": "exit_page",  # computed per session (the last pageview's path)
    # Computed per session too: the hostnames of its first and last pageviews (Plausible's
    # visit:entry_page_hostname / visit:exit_page_hostname, session/cache_store.ex).
    "entry_page_hostname": "entry_page_hostname",
    "exit_page_hostname": "exit_page_hostname",
    "exit_link": "exit_link",  # the url prop of outbound link clicks
    "hostname": "hostname",
    "source": "source",
    "referrer": "referrer",
    "channel": "channel",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_content": "utm_content",
    "utm_term": "utm_term",
    "country": "country",
    "region": "region",
    "city": "city",
    "device": "device",
    "browser": "browser",
    "browser_version": "browser_version",
    "os": "os",
    "os_version": "os_version",
    "screen": "screen",
    "event": "name",
    # The revenue's ISO 4217 code (NULL on events without revenue): revenue is summed per
    # currency this way, never across currencies. Native only; Plausible's v2 has no such
    # dimension (it converts revenue to the goal's currency).
    "currency": "currency",
}
# The tracker's outbound-click event: exit_link is its url prop.
OUTBOUND = "Outbound Link: Click"
# Properties whose value can differ between events of one visit.
EVENT_PROPERTIES = frozenset({"page", "event", "exit_link", "currency"})
# Properties daily rollups don't hold (rollups built before a property existed have no
# rows for it): answered from raw events only, refused (422) outside the raw window.
RAW_ONLY_PROPERTIES = frozenset({"currency", "entry_page_hostname", "exit_page_hostname"})
# Properties computed per session from its events (compile.py's sessions CTE, joined).
SESSION_COMPUTED = frozenset({"exit_page", "entry_page_hostname", "exit_page_hostname"})
INTERVALS = ("minute", "hour", "day", "week", "month")
# A minute series covers at most this long a range (1,440 buckets; the realtime view's 30).
MAX_MINUTE_RANGE = timedelta(days=1)

Op = Literal[
    "is", "is_not", "equals", "equals_not", "contains", "contains_not", "matches", "matches_not"
]


class Filter(msgspec.Struct, frozen=True):
    """dimension op values: "is" with "*" wildcards (the native API's filters), "equals"
    exactly (Plausible v2's "is"); "|" alternatives are separate values. case_sensitive
    false: Plausible v2's modifier, for every op but the regular expressions."""

    op: Op
    dimension: str  # a COLUMNS key or "prop:<key>"
    values: tuple[str, ...]
    case_sensitive: bool = True
    # Also true where the property has no value (Plausible v2's "(none)", "(not set)",
    # "Direct / None"); a negated op then requires a value.
    missing: bool = False


class Not(msgspec.Struct, frozen=True, tag="not"):
    clause: FilterTree


class And(msgspec.Struct, frozen=True, tag="and"):
    clauses: tuple[FilterTree, ...]


class Or(msgspec.Struct, frozen=True, tag="or"):
    clauses: tuple[FilterTree, ...]


FilterTree = Filter | Not | And | Or


class Order(msgspec.Struct, frozen=True):
    key: str  # a metric or a dimension
    descending: bool = True
    # Rows without a value come first (Plausible v2 ordering a dimension ascending: its
    # missing values are empty strings). False: last, whatever the direction.
    nulls_first: bool = False


class Query(msgspec.Struct, frozen=True, kw_only=True):
    site_id: str
    period: Period
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()  # properties ("page", "prop:plan") and/or "time:<interval>"
    filters: tuple[FilterTree, ...] = ()  # all must hold
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0
    # The zone of the site's stored days (Site.settled_day_zone): the `day` column and daily
    # rollups answer only questions asked in that zone (None: never from them).
    site_timezone: str | None = None
    # Add imported daily aggregates where they can answer (query/imported.py): native
    # ?with_imported=true, Plausible v2's include.imports.
    include_imports: bool = False
    # Plausible v2: bounce_rate counts only the visits whose entry page passes this filter
    # (its top-level event:page filter, moved to entry_page; expression.ex
    # session_metric(:bounce_rate)). None: every visit in scope (the native definition).
    bounce_entry: Filter | None = None
    # Whether engagement pings lengthen a visit (visit_duration from its first to its last
    # event of any kind): the native definition. Plausible v2: False, a visit lasts from its
    # first to its last event that isn't a ping (its session cache only keeps a session
    # alive on engagement events: session/cache_store.ex handle_event). Bounces never
    # count pings either way.
    pings_in_visits: bool = True
    # Plausible v2's revenue goals: revenue and average_revenue count only the events whose
    # revenue is in this ISO 4217 currency (the goals' currency; Avocet converts nothing).
    # None: every event's revenue (the native sum, per currency only when asked so).
    revenue_currency: str | None = None
    # ... and only on these events (the revenue goals' event names: Plausible keeps revenue
    # only on events that match a revenue goal). Empty: on any event.
    revenue_events: tuple[str, ...] = ()

    @property
    def interval(self) -> str | None:
        for dim in self.dimensions:
            if dim.startswith("time:"):
                return dim[5:]
        return None

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if not d.startswith("time:"))


def is_property(name: str) -> bool:
    return name in COLUMNS or (name.startswith("prop:") and len(name) > 5)


def filter_leaves(tree: FilterTree) -> Iterator[Filter]:
    """Every Filter of a tree, in order."""
    if isinstance(tree, Filter):
        yield tree
    elif isinstance(tree, Not):
        yield from filter_leaves(tree.clause)
    else:
        for clause in tree.clauses:
            yield from filter_leaves(clause)


def filter_dimensions(tree: FilterTree) -> set[str]:
    """Every dimension a filter tree mentions."""
    return {leaf.dimension for leaf in filter_leaves(tree)}
