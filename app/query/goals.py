"""Goals as filters: an event goal is its event name, a page goal a pageview of its path
(`*` wildcards allowed). Surfaces translate goal names with this, then the engine sees
plain filters (a conversion rate's denominator drops them, as it drops any event filter)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.errors import InvalidRequest
from app.query.model import And, Filter, FilterTree, Or

# display name -> ("event" | "page", event name or page path)
Goals = Mapping[str, tuple[str, str]]


def goal_filter(names: Iterable[str], goals: Goals, *, strict: bool) -> FilterTree:
    """Any of the named goals. Unknown names are an error when strict, else event names
    (Plausible's v2 also accepts a bare event name as a goal)."""
    events: list[str] = []
    pages: list[str] = []
    for name in names:
        goal = goals.get(name)
        if goal is None:
            if strict:
                raise InvalidRequest(f"unknown goal {name!r}: add it to the site's goals first")
            events.append(name)
        elif goal[0] == "page":
            pages.append(goal[1])
        else:
            events.append(goal[1])
    clauses: list[FilterTree] = []
    if events:
        clauses.append(Filter("is", "event", tuple(events)))
    if pages:
        clauses.append(
            And((Filter("is", "event", ("pageview",)), Filter("is", "page", tuple(pages))))
        )
    if not clauses:
        raise InvalidRequest("a goal filter needs at least one goal")
    return clauses[0] if len(clauses) == 1 else Or(tuple(clauses))
