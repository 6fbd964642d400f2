"""Ovyxa's Stats API: GET /api/v1/stats -> {"data": {metrics, timeseries[, comparison]},
"meta": {…, sampled, filtered_bot_traffic}}. JWT or API key; errors in the native envelope
(Ovyxa's own is {"error": {code, message}} too)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get
from litestar.params import QueryParameter

from app.api.dialects.common import AnyRequest, context
from app.api.stats import Ctx, meta, run
from app.errors import InvalidRequest
from app.query.model import Order, Query
from app.query.parse import aggregate_query
from app.query.periods import Period
from app.query.render import change, metrics_of
from app.query.run import Result

DEFAULT_METRICS = "visitors,visits,pageviews,bounce_rate,visit_duration"
DATES = ("date_from", "date_to")
DATES = ("date_from", "date_to")


def _param(description: str, **extra: Any) -> Any:
    return QueryParameter(required=False, schema_extra={"description": description, **extra})


SiteId = Annotated[str | None, _param("required unless the key is bound to one site")]
Day = Annotated[str | None, _param("required, YYYY-MM-DD", format="date")]
Timezone = Annotated[str | None, _param("IANA time zone (default: the site's)")]
Compare = Annotated[
    str | None,
    _param(
        "add the comparison period",
        enum=["true", "false", "previous_period", "year_over_year"],
    ),
]
Metrics = Annotated[str | None, _param(f"comma-separated native metrics ({DEFAULT_METRICS})")]


async def _answer(
    ctx: Ctx, q: Query, period: Period, bots: bool = False
) -> tuple[dict[str, Any], list[Any], Result]:
    """Totals and the daily series of one period (bots: the totals count bot hits too)."""
    total = await run(ctx, msgspec.structs.replace(q, period=period), bots=bots)
    daily = msgspec.structs.replace(
        q, period=period, dimensions=("time:day",), order_by=(Order("time", False),)
    )
    series = [
        {"date": row["time"].date().isoformat(), **metrics_of(row, q.metrics)}
        for row in (await run(ctx, daily)).rows
    ]
    return metrics_of(total.rows[0], q.metrics), series, total


@get("/api/v1/stats")
async def stats(
    request: AnyRequest,
    site_id: SiteId = None,
    date_from: Day = None,
    date_to: Day = None,
    timezone: Timezone = None,
    compare: Compare = None,
    metrics: Metrics = None,
) -> dict[str, Any]:
    """Metrics and a daily timeseries for date_from..date_to (and the comparison period)."""
    params = {
        k: v
        for k, v in (
            ("date_from", date_from),
            ("date_to", date_to),
            ("timezone", timezone),
            ("compare", compare),
        )
        if v
    }
    missing = [name for name in DATES if name not in params]
    if missing:  # still authenticate first: 401/403/404 come before parameter errors
        context(request, site_id, {k: v for k, v in params.items() if k not in DATES})
        raise InvalidRequest(f"Missing required parameter: {missing[0]}")
    ctx = context(request, site_id, params)
    q = aggregate_query(ctx.site.id, ctx.period, {"metrics": metrics or DEFAULT_METRICS})
    values, series, result = await _answer(ctx, q, ctx.period, bots=True)
    data: dict[str, Any] = {"metrics": values, "timeseries": series}
    if ctx.comparison is not None:
        before, before_series, _ = await _answer(ctx, q, ctx.comparison)
        data["comparison"] = {
            "date_from": ctx.comparison.first_day.isoformat(),
            "date_to": ctx.comparison.last_day.isoformat(),
            "metrics": before,
            "timeseries": before_series,
            "change": {m: change(m, values[m], before[m]) for m in q.metrics},
        }
    return {"data": data, "meta": await meta(ctx, result)}


ROUTES = [stats]
