"""Email report lists (meta/013 email_reports): who gets a site's weekly and monthly
report, and which period each address got last (app/jobs/reports.py sends them)."""

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
MAX_RECIPIENTS = 50  # per site and kind


class Recipient(msgspec.Struct, frozen=True):
    site_id: str
    kind: Kind
    email: str
    token: str
    created_at: int
    last_period: date | None


_COLUMNS = "site_id, kind, email, token, created_at, last_period"


def _recipient(row: tuple[object, ...]) -> Recipient:
    site_id, kind, email, token, created_at, last = row
    return Recipient(
        str(site_id),
        "monthly" if kind == "monthly" else "weekly",
        str(email),
        str(token),
        int(str(created_at)),
        date.fromisoformat(str(last)) if last else None,
    )


def recipients_of(meta: MetaStore, site_id: str) -> list[Recipient]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM email_reports WHERE site_id = ? ORDER BY kind DESC, email",
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
    if kind not in KINDS:
        raise InvalidRequest("kind: weekly or monthly")
    address = normalize_email(email)
    row = meta.fetchone(
        "SELECT count(*) FROM email_reports WHERE site_id = ? AND kind = ?", (site_id, kind)
    )
    if row and int(row[0]) >= MAX_RECIPIENTS:
        raise InvalidRequest(f"email: a report goes to at most {MAX_RECIPIENTS} addresses")
    recipient = Recipient(
        site_id,
        "monthly" if kind == "monthly" else "weekly",
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
        raise Conflict(f"email: the {kind} report goes to {address} already") from exc
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
