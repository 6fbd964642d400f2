"""Email lists (meta/013-014 email_reports): who gets a site's weekly and monthly report
(and which period each address got last; app/jobs/reports.py sends them) and its traffic
alerts, whose thresholds are in traffic_alerts (app/jobs/alerts.py)."""

from __future__ import annotations

import secrets
import sqlite3
import time
from datetime import date
from typing import Literal

import msgspec

from app.errors import Conflict, InvalidRequest, NotFound
from app.storage.accounts import normalize_email
from app.storage.meta import MetaStore

Kind = Literal["weekly", "monthly"]
KINDS: tuple[Kind, ...] = ("weekly", "monthly")
AlertKind = Literal["spike", "drop"]
ALERT_KINDS: tuple[AlertKind, ...] = ("spike", "drop")
LISTS = (*KINDS, *ALERT_KINDS)  # every kind of list
MAX_RECIPIENTS = 50  # per site and kind
LABELS = {
    "weekly": "weekly report",
    "monthly": "monthly report",
    "spike": "traffic spike",
    "drop": "traffic drop",
}


class Recipient(msgspec.Struct, frozen=True):
    site_id: str
    kind: str  # one of LISTS
    email: str
    token: str
    created_at: int
    last_period: date | None


_COLUMNS = "site_id, kind, email, token, created_at, last_period"


def _recipient(row: tuple[object, ...]) -> Recipient:
    site_id, kind, email, token, created_at, last = row
    return Recipient(
        str(site_id),
        str(kind),
        str(email),
        str(token),
        int(str(created_at)),
        date.fromisoformat(str(last)) if last else None,
    )


def recipients_of(meta: MetaStore, site_id: str) -> list[Recipient]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM email_reports WHERE site_id = ? ORDER BY kind, email",
        (site_id,),
    )
    return [_recipient(row) for row in rows]


def all_recipients(meta: MetaStore) -> list[Recipient]:
    """Every list of every site not being deleted."""
    rows = meta.fetchall(
        f"SELECT {', '.join('r.' + c for c in _COLUMNS.split(', '))} FROM email_reports r"
        " JOIN sites s ON s.id = r.site_id WHERE s.deleted_at IS NULL"
        " ORDER BY r.site_id, r.kind, r.email"
    )
    return [_recipient(row) for row in rows]


def add_recipient(meta: MetaStore, site_id: str, kind: str, email: str) -> Recipient:
    """Put an address on a site's list (Conflict when it is on it already)."""
    if kind not in LISTS:
        raise InvalidRequest(f"kind: one of {', '.join(LISTS)}")
    address = normalize_email(email)
    row = meta.fetchone(
        "SELECT count(*) FROM email_reports WHERE site_id = ? AND kind = ?", (site_id, kind)
    )
    if row and int(row[0]) >= MAX_RECIPIENTS:
        raise InvalidRequest(f"email: a report goes to at most {MAX_RECIPIENTS} addresses")
    recipient = Recipient(
        site_id,
        kind,
        address,
        secrets.token_urlsafe(24),
        int(time.time()),
        None,
    )
    try:
        meta.execute(
            f"INSERT INTO email_reports ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
            (site_id, kind, address, recipient.token, recipient.created_at),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"email: the {LABELS[kind]} list has {address} already") from exc
    return recipient


def remove_recipient(meta: MetaStore, site_id: str, kind: str, email: str) -> None:
    gone = meta.execute(
        "DELETE FROM email_reports WHERE site_id = ? AND kind = ? AND email = ?",
        (site_id, kind, email),
    )
    if not gone:
        raise NotFound("that address is not on the list")


def by_token(meta: MetaStore, token: str) -> Recipient | None:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM email_reports WHERE token = ?", (token,))
    return _recipient(row) if row else None


def unsubscribe(meta: MetaStore, token: str) -> Recipient | None:
    """Take the token's address off its list; None when the token names none (any more)."""
    found = by_token(meta, token)
    if found is not None:
        meta.execute("DELETE FROM email_reports WHERE token = ?", (token,))
    return found


def mark_sent(meta: MetaStore, recipient: Recipient, first_day: date) -> None:
    """The address got the report of the period starting first_day (never moves back)."""
    meta.execute(
        "UPDATE email_reports SET last_period = ? WHERE site_id = ? AND kind = ? AND email = ?"
        " AND (last_period IS NULL OR last_period < ?)",
        (
            first_day.isoformat(),
            recipient.site_id,
            recipient.kind,
            recipient.email,
            first_day.isoformat(),
        ),
    )


def thresholds_of(meta: MetaStore, site_id: str) -> dict[str, int]:
    """The site's alert thresholds by kind (an alert without one is off)."""
    rows = meta.fetchall("SELECT kind, threshold FROM traffic_alerts WHERE site_id = ?", (site_id,))
    return {str(kind): int(threshold) for kind, threshold in rows}


def set_threshold(meta: MetaStore, site_id: str, kind: str, threshold: int | None) -> None:
    """Turn an alert on at `threshold` visitors, or off (None)."""
    if kind not in ALERT_KINDS:
        raise InvalidRequest("kind: spike or drop")
    if threshold is None:
        meta.execute("DELETE FROM traffic_alerts WHERE site_id = ? AND kind = ?", (site_id, kind))
        return
    if not 1 <= threshold <= 1_000_000_000:
        raise InvalidRequest("threshold: a whole number of visitors, at least 1")
    meta.execute(
        "INSERT INTO traffic_alerts (site_id, kind, threshold) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id, kind) DO UPDATE SET threshold = excluded.threshold",
        (site_id, kind, threshold),
    )


class Alert(msgspec.Struct, frozen=True):
    site_id: str
    kind: str
    threshold: int
    last_sent: int | None


def all_alerts(meta: MetaStore) -> list[Alert]:
    """Every alert that is on, of sites not being deleted."""
    rows = meta.fetchall(
        "SELECT a.site_id, a.kind, a.threshold, a.last_sent FROM traffic_alerts a"
        " JOIN sites s ON s.id = a.site_id WHERE s.deleted_at IS NULL ORDER BY 1, 2"
    )
    return [
        Alert(str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3])) for r in rows
    ]


def mark_alerted(meta: MetaStore, site_id: str, kind: str, at: int) -> None:
    meta.execute(
        "UPDATE traffic_alerts SET last_sent = ? WHERE site_id = ? AND kind = ?",
        (at, site_id, kind),
    )
