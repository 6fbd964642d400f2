"""Conversion goals per site: a custom event name or a page path (SQLite), optionally a
revenue goal with its currency."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Literal

import msgspec
from babel.numbers import list_currencies

from app.errors import Conflict, InvalidRequest, NotFound
from app.storage.meta import MetaStore

GoalKind = Literal["event", "page"]


class Goal(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    kind: GoalKind
    value: str  # the event name, or the page path (may use * as a wildcard)
    name: str
    created_at: int
    # A revenue goal's ISO 4217 code (Plausible's goal currency); None: no revenue goal.
    currency: str | None = None

    def public(self) -> dict[str, object]:
        event = self.value if self.kind == "event" else None
        page = self.value if self.kind == "page" else None
        return {
            "id": self.id,
            "site_id": self.site_id,
            "type": self.kind,
            "event_name": event,
            "page_path": page,
            "display_name": self.name,
            "currency": self.currency,
            "created_at": self.created_at,
        }


_COLUMNS = "id, site_id, kind, value, name, created_at, currency"


def currency_code(value: str | None) -> str | None:
    """A goal's currency as stored: an ISO 4217 code (any case in, upper case out), None
    when empty; anything else is an InvalidRequest naming the field."""
    code = (value or "").strip().upper()
    if not code:
        return None
    if code not in list_currencies():
        raise InvalidRequest(
            f"currency: {value!r} is not an ISO 4217 currency code (e.g. EUR, USD)"
        )
    return code


def add_goal(
    meta: MetaStore,
    site_id: str,
    kind: GoalKind,
    value: str,
    name: str,
    currency: str | None = None,
) -> Goal:
    goal = Goal(
        secrets.token_hex(8), site_id, kind, value, name, int(time.time()), currency_code(currency)
    )
    try:
        meta.execute(
            f"INSERT INTO goals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (goal.id, site_id, kind, value, name, goal.created_at, goal.currency),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the site already has the {kind} goal {value!r}") from exc
    return goal


def goals_of(meta: MetaStore, site_id: str) -> list[Goal]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM goals WHERE site_id = ? ORDER BY created_at, rowid", (site_id,)
    )
    return [Goal(*row) for row in rows]


def delete_goal(meta: MetaStore, site_id: str, goal_id: str) -> None:
    """Delete a goal, and the site's funnels that have it as a step (meta/015)."""
    with meta.transaction() as db:
        gone = db.execute("DELETE FROM goals WHERE site_id = ? AND id = ?", (site_id, goal_id))
        if gone.rowcount == 0:
            raise NotFound("goal not found")
        db.execute(
            "DELETE FROM funnels WHERE site_id = ? AND id IN (SELECT f.id FROM funnels f,"
            " json_each(f.steps) s WHERE f.site_id = ? AND s.value = ?)",
            (site_id, site_id, goal_id),
        )
