"""What the nodes of a cluster send each other (issue #24): msgpack bodies, the internal
API's bearer secret, and which sessionizer owns a visitor.

Collectors send rows as the pipeline builds them (EVENT_SCHEMA's order) with session_id 0
and the visit attributes of the hit itself; the session owner fills in the session. The
control plane takes sessionized rows with a batch token (the ClickHouse insert's
deduplication token, the same on every retry)."""

from __future__ import annotations

import hashlib
import hmac
import zlib
from decimal import Decimal
from typing import Any

import msgspec

from app.errors import InvalidRequest
from app.storage.meta import Site

PREFIX = "/internal/v1"
CONTENT_TYPE = "application/msgpack"
VISIT_ATTRS = 18  # len(pipeline.VISIT_COLUMNS): row positions 8..25
ATTRS_START = 8
ATTRS_END = ATTRS_START + VISIT_ATTRS
SESSION_AT = 5  # a row's session_id position

_T = str | None
# One stored row, typed for decoding: what pipeline.Ingestor.row() builds.
# fmt: off
WireRow = tuple[
    str, int, int, str, int, int, str, str,  # site_id ts day name visitor session host path
    _T, _T, _T, _T, _T, _T, _T, _T, _T,  # entry_page referrer source channel utm_*
    _T, _T, _T, _T, _T, _T, _T, _T, _T,  # device browser (version) os (version) screen geo
    list[tuple[str, str]] | None,  # props
    Decimal | None,  # revenue
    _T,  # currency
    bool,  # interactive
    int | None,  # engagement_ms
    int | None,  # scroll_depth
    int | None,  # user_key
]
# fmt: on


class Hits(msgspec.Struct, array_like=True, frozen=True):
    """Collector -> sessionizer: rows to sessionize and commit, and counted drops."""

    rows: list[WireRow]
    bots: list[tuple[str, int, int]] = []
    excluded: list[tuple[str, int, str, int]] = []


class Append(msgspec.Struct, array_like=True, frozen=True):
    """Sessionizer -> control plane: a batch to commit once, whatever the retries."""

    token: str
    rows: list[WireRow]
    bots: list[tuple[str, int, int]] = []
    excluded: list[tuple[str, int, str, int]] = []


class Directory(msgspec.Struct, frozen=True):
    """Control plane -> collector: every site and its exclusion rules."""

    sites: list[Site]
    rules: dict[str, list[tuple[str, str]]]


# Collector -> control plane: hits dropped per site and reason ([hits, last at]), for
# "verify installation" (app/ingest/diagnostics.py DropLog.drain).
Drops = dict[str, dict[str, tuple[int, int]]]

STORED = 0
NO_SESSION = 1  # an engagement ping for a visit its owner doesn't know

encode = msgspec.msgpack.Encoder(decimal_format="string").encode
hits_decoder = msgspec.msgpack.Decoder(Hits)
append_decoder = msgspec.msgpack.Decoder(Append)
directory_decoder = msgspec.msgpack.Decoder(Directory)
statuses_decoder = msgspec.msgpack.Decoder(list[int])
open_sessions_decoder = msgspec.msgpack.Decoder(list[tuple[Any, ...]])
drops_decoder = msgspec.msgpack.Decoder(Drops)


def decode(decoder: msgspec.msgpack.Decoder[Any], body: bytes) -> Any:
    """A body, or InvalidRequest (400) saying what is wrong with it."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidRequest(f"body: {exc}") from exc


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}", "content-type": CONTENT_TYPE}


def authorized(header: str | None, secret: str) -> bool:
    """The request carries the cluster's secret (constant-time); never with no secret."""
    if not secret or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].encode(), secret.encode())


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: adding a bucket at the end moves only
    1/n of the keys (visits open at that moment are split; the rest stay whole)."""
    key &= 0xFFFF_FFFF_FFFF_FFFF
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFF_FFFF_FFFF_FFFF
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def owner_of(site_id: str, visitor: int, sessionizers: int) -> int:
    """The position of the sessionizer that owns the visitor's sessions on the site."""
    return jump_hash(zlib.crc32(site_id.encode()) << 32 ^ visitor, sessionizers)


def fingerprint(salt: bytes) -> str:
    """A salt's fingerprint, to compare nodes' salts without showing them."""
    return hashlib.blake2b(salt, digest_size=6, person=b"avocet-salt").hexdigest()
