"""One decoder for every tracking body: Plausible's short keys, long names, Zenovay paths."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import msgspec

from app.errors import JSON_ERRORS, EventInvalid

# Plausible's documented limits; parts over them are dropped, never a 5xx.
MAX_NAME = 120
MAX_URL = 2000
MAX_PROPS = 30
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000
MAX_ENGAGEMENT_MS = 24 * 3600 * 1000
MAX_AMOUNT_DIGITS = 12  # revenue amounts are below 10^12 in size (DECIMAL(18, 6))

Scalar = str | int | float | bool | None


class Body(msgspec.Struct, omit_defaults=True):
    """The wire body: every field optional, short and long spellings side by side."""

    n: str | None = None
    name: str | None = None
    u: str | None = None
    url: str | None = None
    d: str | None = None
    domain: str | None = None
    s: str | None = None
    site_id: str | None = None
    r: str | None = None
    referrer: str | None = None
    p: dict[str, Any] | str | None = None
    props: dict[str, Any] | str | None = None
    m: dict[str, Any] | str | None = None  # Plausible's old name for props
    meta: dict[str, Any] | str | None = None
    revenue_short: dict[str, Any] | str | None = msgspec.field(default=None, name="$")
    revenue: dict[str, Any] | str | None = None
    i: bool | int | None = None
    interactive: bool | int | None = None
    h: bool | int | None = None
    hashMode: bool | int | None = None
    e: int | float | None = None
    sd: int | float | None = None
    w: int | float | None = None
    screen_width: int | float | None = None


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    """A validated hit, before enrichment."""

    name: str
    url: str
    domain: str | None = None
    site_id: str | None = None
    referrer: str | None = None
    props: tuple[tuple[str, str], ...] = ()
    revenue: tuple[Decimal, str] | None = None
    interactive: bool = True
    hash_mode: bool = False
    engagement_ms: int | None = None
    scroll_depth: int | None = None
    screen_width: int | None = None

    @property
    def is_engagement(self) -> bool:
        return self.name == "engagement"


_decoder = msgspec.json.Decoder(Body)
_any_decoder = msgspec.json.Decoder()


def decode_hit(raw: bytes, *, site_id: str | None = None, default_name: str | None = None) -> Hit:
    """Bytes -> Hit, or EventInvalid naming the field that is wrong."""
    try:
        body = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise EventInvalid("request", f"invalid field: {exc}") from exc
    except JSON_ERRORS as exc:
        raise EventInvalid("request", "Unable to process request: invalid JSON") from exc
    return hit_from_body(body, site_id=site_id, default_name=default_name)


def hit_from_body(
    body: Body, *, site_id: str | None = None, default_name: str | None = None
) -> Hit:
    """Coalesce short/long names, apply the limits, normalise types."""
    name = _first(body.n, body.name) or default_name
    if not name or not name.strip():
        raise EventInvalid("name", "can't be blank")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise EventInvalid("name", f"should be at most {MAX_NAME} character(s)")
    url = _first(body.u, body.url)
    if not url or not url.strip():
        raise EventInvalid("url", "is required")
    url = url.strip()
    if len(url.encode()) > MAX_URL:
        raise EventInvalid("url", f"should be at most {MAX_URL} bytes")
    referrer = _first(body.r, body.referrer)
    if referrer is not None and (not referrer.strip() or len(referrer.encode()) > MAX_URL):
        referrer = None
    return Hit(
        name=name,
        url=url,
        domain=_first(body.d, body.domain),
        site_id=site_id or _first(body.s, body.site_id),
        referrer=referrer,
        props=_props(_first(body.p, body.props, body.m, body.meta)),
        revenue=_revenue(_first(body.revenue_short, body.revenue)),
        interactive=_flag(_first(body.i, body.interactive), default=True),
        hash_mode=_flag(_first(body.h, body.hashMode), default=False),
        engagement_ms=_clamp(body.e, 0, MAX_ENGAGEMENT_MS),
        scroll_depth=_clamp(body.sd, 0, 100),
        screen_width=_clamp(_first(body.w, body.screen_width), 0, 100_000),
    )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _flag(value: bool | int | None, *, default: bool) -> bool:
    return default if value is None else bool(value)


def _clamp(value: float | None, low: int, high: int) -> int | None:
    # Only a float can be infinite; isfinite() on a 400-digit int raises OverflowError.
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return int(min(max(value, low), high))


def _maybe_json(value: dict[str, Any] | str | None) -> dict[str, Any] | None:
    # Plausible's older trackers send props and revenue JSON-encoded inside a string.
    if isinstance(value, str):
        try:
            value = _any_decoder.decode(value)
        except JSON_ERRORS:
            return None
    return value if isinstance(value, dict) else None


def _props(value: dict[str, Any] | str | None) -> tuple[tuple[str, str], ...]:
    """Scalar props as strings; nested values, empty keys and over-limit parts dropped."""
    props = _maybe_json(value)
    if not props:
        return ()
    kept: list[tuple[str, str]] = []
    for key, raw in props.items():
        if len(kept) == MAX_PROPS:
            break
        if raw is None or isinstance(raw, dict | list) or not key:
            continue
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if len(key.encode()) > MAX_PROP_KEY or len(text.encode()) > MAX_PROP_VALUE or not text:
            continue
        kept.append((key, text))
    return tuple(kept)


def _revenue(value: dict[str, Any] | str | None) -> tuple[Decimal, str] | None:
    """{amount, currency} -> (Decimal with 6 places, 'EUR'); anything malformed is ignored."""
    revenue = _maybe_json(value)
    if not revenue:
        return None
    currency = revenue.get("currency")
    amount = revenue.get("amount")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        return None
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        return None
    number = parse_amount(amount)
    return None if number is None else (number, currency.upper())


def parse_amount(amount: int | float | str) -> Decimal | None:
    """A revenue amount with 6 places, or None unless it is a finite number below 10^12 in
    size after rounding (the events' DECIMAL(18, 6)). The size is read from the exponent
    first: "1e999999999" parses, but abs() or quantize() on it raise decimal.Overflow."""
    try:
        number = Decimal(str(amount).strip())
    except ArithmeticError:  # InvalidOperation: not a number
        return None
    if not number.is_finite() or (number and number.adjusted() >= MAX_AMOUNT_DIGITS):
        return None
    rounded = number.quantize(Decimal("0.000001"))  # 999999999999.9999999 rounds up to 10^12
    return rounded if rounded.adjusted() < MAX_AMOUNT_DIGITS else None
