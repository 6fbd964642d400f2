"""Answers that include imported daily aggregates (Query.include_imports: native
?with_imported=true, Plausible v2's include.imports): the site's own components per
bucket and value (rollups or raw events, as any answer), plus the imported table's
(compile_imported.py), then the metrics from the summed components, sorted and paged as
a rollup answer is. Every metric imports can answer is a ratio of sums (visit duration =
seconds / visits, bounce rate = bounces / visits), so the sum of the two is exact."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

import msgspec

from app.query.compile_imported import compile_imported as compile_sql
from app.query.compile_imported import decide
from app.query.model import Query
from app.query.rollup import COMPONENTS
from app.query.rollup_answer import answer_from_sums, bucket_of, needs
from app.query.run import Result, dialect_of
from app.storage.store import Store

Answer = Callable[[Store, Query], Result]


class ImportsStatus(NamedTuple):
    """Plausible v2's meta: whether imported data is in the answer, and if not, why."""

    included: bool
    skip_reason: str | None  # no_imported_data | out_of_range | unsupported_query | ...
    table: str | None = None


def imports_status(store: Store, q: Query) -> ImportsStatus:
    """Whether the answer to q includes imported data (blocking: one small look-up)."""
    span = store.imported_span(q.site_id)
    if span is None:
        return ImportsStatus(False, "no_imported_data")
    if span[1] < q.period.first_day or span[0] > q.period.last_day:
        return ImportsStatus(False, "out_of_range")
    decision = decide(q)
    return ImportsStatus(decision.table is not None, decision.skip_reason, decision.table)


def answer_with_imports(store: Store, q: Query, native: Answer) -> Result:
    """q answered by `native` (the site's own data), plus its imported aggregates when
    they can answer it (else the native answer alone)."""
    plain = msgspec.structs.replace(q, include_imports=False)
    status = imports_status(store, q)
    if not status.included or status.table is None:
        alone = native(store, plain)
        alone.imports_included, alone.imports_skip_reason = False, status.skip_reason
        return alone
    prop = q.properties[0] if q.properties else ""
    needed = {c for m in q.metrics for c in needs(m, q.pings_in_visits)} | {"events"}
    components = tuple(c for c in COMPONENTS if c in needed)
    own = native(
        store,
        msgspec.structs.replace(plain, metrics=components, order_by=(), limit=None, offset=0),
    )
    sums: dict[tuple[Any, Any], list[Any]] = defaultdict(lambda: [0] * len(COMPONENTS))
    at = [COMPONENTS.index(c) for c in components]
    for row in own.rows:
        key = (row.get("time") if q.interval else None, row.get(prop) if prop else None)
        _add(sums[key], at, [row[c] for c in components])
    sql, params = compile_sql(q, status.table, components, dialect_of(store))
    for day, value, *values in store.query(sql, params):
        _add(sums[(_bucket(day, q.interval), value)], at, values)
    result = answer_from_sums(q, prop, sums)
    result.from_rollups = own.from_rollups
    result.imports_included = True
    return result


def _bucket(day: date, interval: str | None) -> Any:
    return bucket_of(day, interval) if interval else None


def _add(total: list[Any], at: list[int], values: list[Any]) -> None:
    for i, value in zip(at, values, strict=True):
        total[i] += float(value) if i == _REVENUE else (value or 0)


_REVENUE = COMPONENTS.index("revenue")
