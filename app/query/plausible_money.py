"""Plausible v2's revenue metrics: which currency a question's revenue is in (its goals'),
the warnings when there is none (lib/plausible/stats/goal/revenue.ex preload/2,
query_result.ex metric_warnings), and the money objects it answers ({short, long, value,
currency}: ex_money's Money.to_string! in the "en" locale, short with one fraction digit).
Formats come from CLDR through babel, as ex_cldr takes them from CLDR."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from babel.numbers import format_currency, format_decimal, get_currency_symbol

REVENUE_METRICS = ("total_revenue", "average_revenue")
# query_result.ex @revenue_metrics_warnings (the ones a self-hosted site can get).
WARNINGS = {
    "no_single_revenue_currency": "Revenue metrics are null as there are multiple currencies"
    " for the selected event:goals.",
    "no_revenue_goals_matching": "Revenue metrics are null as there are no matching revenue goals.",
}
# CLDR's English compact forms (¤0K, ¤0M, ¤0B, ¤0T), largest first.
_COMPACT = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"))
_THOUSAND = (Decimal(1000), "K")
_NBSP = "\u00a0"


class RevenueCurrencies(NamedTuple):
    """default: the one currency of the question (None: per goal, or none); by_goal: each
    revenue goal's currency for an event:goal breakdown; warning: a metric_warnings code."""

    default: str | None
    by_goal: Mapping[str, str]
    warning: str | None


def revenue_currencies(
    metrics: Iterable[str],
    filters: list[Any],
    dimensions: list[str],
    currencies: Mapping[str, str | None],
) -> RevenueCurrencies | None:
    """revenue.ex preload/2 for a question: None when no revenue metric is asked. The goals
    are those its top-level event:goal filters match (every goal without one)."""
    if not set(REVENUE_METRICS) & set(metrics):
        return None
    matching = _matching_goals(filters, list(currencies))
    by_goal = {g: c for g in matching if (c := currencies.get(g))}
    found = list(dict.fromkeys(by_goal.values()))
    goal_dimension = "event:goal" in dimensions
    if len(found) == 1 and not goal_dimension:
        return RevenueCurrencies(found[0], {}, None)
    if not found:
        return RevenueCurrencies(None, {}, "no_revenue_goals_matching")
    if goal_dimension:
        return RevenueCurrencies(None, by_goal, None)
    return RevenueCurrencies(None, {}, "no_single_revenue_currency")


def _matching_goals(filters: list[Any], names: list[str]) -> list[str]:
    """The goals the top-level event:goal filters name ("is", case-insensitive when asked)
    or contain ("contains"); every goal when no filter is on event:goal."""
    goal_filters = [
        f for f in filters if isinstance(f, list) and len(f) >= 3 and f[1] == "event:goal"
    ]
    if not goal_filters:
        return names
    found = []
    for raw in goal_filters:
        loose = len(raw) == 4 and isinstance(raw[3], dict) and raw[3].get("case_sensitive") is False

        def fold(text: str, loose: bool = loose) -> str:
            return text.lower() if loose else text

        values = [fold(str(v)) for v in raw[2]]
        for name in names:
            named = fold(name)
            hit = named in values if raw[0] == "is" else any(v in named for v in values)
            if hit and name not in found:
                found.append(name)
    return found


def metric_warnings(metrics: Iterable[str], revenue: RevenueCurrencies | None) -> dict[str, Any]:
    """meta.metric_warnings: each revenue metric asked, when its values are null."""
    if revenue is None or revenue.warning is None:
        return {}
    code = revenue.warning
    return {m: {"code": code, "warning": WARNINGS[code]} for m in metrics if m in REVENUE_METRICS}


def money(value: Any, currency: str) -> dict[str, Any]:
    """A revenue value as Plausible's money object. The amount is ClickHouse's
    toDecimal64(x, 3) of it (three places, truncated); null counts as 0."""
    amount = Decimal(str(value or 0)).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    return {
        "short": _short(amount, currency),
        "long": _spaced(format_currency(amount, currency, locale="en"), currency),
        "value": float(amount),
        "currency": currency,
    }


def _short(amount: Decimal, currency: str) -> str:
    """Money.to_string!(money, format: :short, fractional_digits: 1): "$1.7K", "$600.0"."""
    size = abs(amount)
    divisor, unit = Decimal(1), ""
    for at, letter in (*_COMPACT, _THOUSAND):
        if size >= at:
            divisor, unit = at, letter
            break
    scaled = (size / divisor).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    number = format_decimal(scaled, format="#,##0.0", locale="en")
    sign = "-" if amount < 0 else ""
    return _spaced(f"{sign}{get_currency_symbol(currency, locale='en')}{number}{unit}", currency)


def _spaced(text: str, currency: str) -> str:
    """CLDR's currency spacing: a symbol that ends in a letter ("CHF") is set apart from
    the digits by a no-break space ("CHF 12.50"); "$", "€", "£" are not."""
    symbol = get_currency_symbol(currency, locale="en")
    if symbol and symbol[-1].isalpha() and symbol in text:
        at = text.index(symbol) + len(symbol)
        if at < len(text) and text[at].isdigit():
            return text[:at] + _NBSP + text[at:]
    return text
