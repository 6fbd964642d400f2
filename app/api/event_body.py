"""Wire bodies of the server-side Events API (Infinity, OpenAnalytics, Ovyxa, Plausible
names) and their translation into a Hit plus who and when."""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from app.errors import JSON_ERRORS, EventInvalid, InvalidRequest
from app.ingest.hit import Body, Hit, hit_from_body, parse_amount

Props = dict[str, Any]
Number = int | float

# ISO 4217 currencies whose minor unit is not 1/100 (the rest have 2 digits).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_DIGITS = {
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4,
    "UYW": 4,
}


class EventBody(msgspec.Struct, frozen=True):
    """POST /api/v1/events, /api/v1/pageviews and /v1/projects/{id}/events."""

    event_name: str | None = None
    name: str | None = None
    event_type: str | None = None
    site_id: str | None = None
    url: str | None = None
    referrer: str | None = None
    metadata: Props | None = None
    properties: Props | None = None
    props: Props | None = None
    visitor_id: str | None = None
    user_id: str | None = None
    revenue: Number | str | Props | None = None
    currency: str | None = None
    timestamp: Number | str | None = None
    ip: str | None = None
    user_agent: str | None = None


class PurchaseBody(msgspec.Struct, frozen=True):
    """POST /api/v1/events/purchase (Infinity): price in the currency's minor units."""

    price: Number
    currency: str
    product_name: str | None = None
    quantity: int = 1
    metadata: Props | None = None
    visitor_id: str | None = None
    user_id: str | None = None
    site_id: str | None = None
    url: str | None = None
    timestamp: Number | str | None = None
    ip: str | None = None
    user_agent: str | None = None


class ServerEvent(NamedTuple):
    """A decoded server-side event: the hit, its time, and what identifies its sender."""

    hit: Hit
    ts_us: int | None  # None: now
    user_id: str | None
    ip: str | None
    user_agent: str | None


# Epoch milliseconds up to the end of the year 9999 (datetime's range), in digits or not.
MAX_EPOCH_MS = 253_402_300_799_999
_EPOCH_MS = re.compile(r"-?[0-9]{1,20}")

_event_decoder = msgspec.json.Decoder(EventBody)
_purchase_decoder = msgspec.json.Decoder(PurchaseBody)


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid field: {exc}") from exc
    except JSON_ERRORS as exc:
        raise InvalidRequest("the body is not valid JSON") from exc


def decode_event(raw: bytes) -> EventBody:
    return _decode(_event_decoder, raw)  # type: ignore[no-any-return]


def decode_purchase(raw: bytes) -> PurchaseBody:
    return _decode(_purchase_decoder, raw)  # type: ignore[no-any-return]


def parse_timestamp(value: Number | str | None) -> int | None:
    """Epoch milliseconds or ISO-8601 (naive = UTC) -> epoch microseconds."""
    if value is None:
        return None
    if isinstance(value, str) and _EPOCH_MS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool):
        raise InvalidRequest("timestamp: expected epoch milliseconds or an ISO-8601 string")
    if isinstance(value, int | float):
        # Compared before any arithmetic: 1e306 * 1000 is inf, and a 400-digit int is
        # no float at all.
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequest("timestamp: not a finite number")
        if not -MAX_EPOCH_MS <= value <= MAX_EPOCH_MS:
            raise InvalidRequest("timestamp: epoch milliseconds beyond the year 9999")
        return int(value * 1000)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidRequest(f"timestamp: not epoch ms or ISO-8601: {_shown(value)}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def check_window(ts_us: int | None, now_us: int, future_s: int, retention_days: int) -> None:
    """InvalidRequest when an event is stamped too far ahead or before the raw window."""
    if ts_us is None:
        return
    if ts_us > now_us + future_s * 1_000_000:
        raise InvalidRequest(f"timestamp: more than {future_s} seconds in the future")
    if ts_us < now_us - retention_days * 86_400_000_000:
        raise InvalidRequest(f"timestamp: older than the {retention_days}-day raw event window")


def _shown(value: object) -> str:
    """A client's value echoed in an error, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _check_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise InvalidRequest(f"ip: not an IP address: {_shown(value)}") from exc


def _revenue(amount: Number | str | Props | None, currency: str | None) -> Props | None:
    if amount is None or isinstance(amount, dict):
        return amount
    if not currency or len(currency) != 3 or not currency.isalpha():
        raise InvalidRequest("currency: a 3-letter ISO 4217 code is required with revenue")
    number = parse_amount(amount)
    if number is None:
        raise InvalidRequest(f"revenue: not a number below 10^12 in size: {_shown(amount)}")
    return {"amount": str(number), "currency": currency.upper()}


def _hit(body: Body, site_id: str, field: str) -> Hit:
    """hit_from_body, with its errors renamed to the field this API calls it."""
    try:
        return hit_from_body(body, site_id=site_id)
    except EventInvalid as exc:
        name = field if exc.field == "name" else exc.field
        raise InvalidRequest(f"{name}: {exc.detail}") from exc


def event_from_body(
    body: EventBody, site_id: str, domain: str, name: str | None = None
) -> ServerEvent:
    """An event body as a hit; `name` forces the event name (pageviews)."""
    event_name = name or body.event_name or body.name or body.event_type
    props = {**(body.metadata or {}), **(body.properties or {}), **(body.props or {})}
    if body.event_type and event_name != body.event_type:
        props.setdefault("event_type", body.event_type)
    wire = Body(
        name=event_name,
        url=body.url or f"https://{domain}/",
        referrer=body.referrer,
        props=props or None,
        revenue=_revenue(body.revenue, body.currency),
    )
    return ServerEvent(
        _hit(wire, site_id, "event_name"),
        parse_timestamp(body.timestamp),
        body.user_id or body.visitor_id,
        _check_ip(body.ip),
        body.user_agent,
    )


def purchase_from_body(body: PurchaseBody, site_id: str, domain: str) -> ServerEvent:
    """A purchase: revenue = price in minor units / 10^(the currency's minor digits)."""
    currency = body.currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidRequest("currency: a 3-letter ISO 4217 code is required")
    if body.price < 0 or (isinstance(body.price, float) and not math.isfinite(body.price)):
        raise InvalidRequest("price: must be a non-negative amount in minor units")
    if body.quantity < 1:
        raise InvalidRequest("quantity: must be at least 1")
    # Bounded before Decimal: a revenue of 10^12 or more would be dropped from the event.
    amount = parse_amount(str(Decimal(str(body.price)).scaleb(-_MINOR_DIGITS.get(currency, 2))))
    if amount is None:
        raise InvalidRequest("price: the amount must be below 10^12 in the currency's unit")
    props: Props = {**(body.metadata or {}), "quantity": body.quantity}
    if body.product_name:
        props["product_name"] = body.product_name
    wire = Body(
        name="purchase",
        url=body.url or f"https://{domain}/",
        props=props,
        revenue={"amount": str(amount), "currency": currency},
    )
    return ServerEvent(
        _hit(wire, site_id, "event_name"),
        parse_timestamp(body.timestamp),
        body.user_id or body.visitor_id,
        _check_ip(body.ip),
        body.user_agent,
    )
