"""Goals as filters: an event goal is its event name, a page goal a pageview of its path
(`*` wildcards allowed). Surfaces translate goal names with this, then the engine sees
plain filters (a conversion rate's denominator drops them, as it drops any event filter)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.errors import InvalidRequest
from app.query.model import And, Filter, FilterTree, Or

# display name -> ("event" | "page", event name or page path)
Goals = Mapping[str, tuple[str, str]]


def goal_filter(
    names: Iterable[str], goals: Goals, *, strict: bool, case: bool = True
) -> FilterTree:
    """Any of the named goals. Unknown names are an error when strict, else event names
    (Plausible's v2 also accepts a bare event name as a goal). case=False: names match
    goals and event names whatever their case (v2's case_sensitive: false)."""
    events: list[str] = []
    pages: list[str] = []
    folded = {n.lower(): g for n, g in goals.items()} if not case else {}
    for name in names:
        goal = goals.get(name) if case else goals.get(name, folded.get(name.lower()))
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
        clauses.append(Filter("is", "event", tuple(events), case_sensitive=case))
    if pages:
        clauses.append(
            And((Filter("is", "event", ("pageview",)), Filter("is", "page", tuple(pages))))
        )
    if not clauses:
        raise InvalidRequest("a goal filter needs at least one goal")
    return clauses[0] if len(clauses) == 1 else Or(tuple(clauses))
