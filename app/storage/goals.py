"""Conversion goals per site: a custom event name or a page path (SQLite)."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Literal

import msgspec

from app.errors import Conflict, NotFound
from app.storage.meta import MetaStore

GoalKind = Literal["event", "page"]


class Goal(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    kind: GoalKind
    value: str  # the event name, or the page path (may use * as a wildcard)
    name: str
    created_at: int

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
            "created_at": self.created_at,
        }


_COLUMNS = "id, site_id, kind, value, name, created_at"


def add_goal(meta: MetaStore, site_id: str, kind: GoalKind, value: str, name: str) -> Goal:
    goal = Goal(secrets.token_hex(8), site_id, kind, value, name, int(time.time()))
    try:
        meta.execute(
            f"INSERT INTO goals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (goal.id, site_id, kind, value, name, goal.created_at),
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
    if meta.execute("DELETE FROM goals WHERE site_id = ? AND id = ?", (site_id, goal_id)) == 0:
        raise NotFound("goal not found")
