"""Annotations (meta/016): a site's dated notes, drawn on the dashboard's graph."""

from __future__ import annotations

import secrets
import time
from datetime import date
from typing import Any

import msgspec

from app.errors import InvalidRequest, NotFound
from app.storage.meta import MetaStore

MAX_TEXT = 200
MAX_PER_SITE = 2_000


class Annotation(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    day: date
    text: str
    created_at: int

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "date": self.day.isoformat(), "text": self.text}


def annotations_of(meta: MetaStore, site_id: str, first: date, last: date) -> list[Annotation]:
    """The site's notes of days first..last, oldest first."""
    rows = meta.fetchall(
        "SELECT id, site_id, day, text, created_at FROM annotations"
        " WHERE site_id = ? AND day >= ? AND day <= ? ORDER BY day, created_at, id",
        (site_id, first.isoformat(), last.isoformat()),
    )
    return [Annotation(r[0], r[1], date.fromisoformat(r[2]), r[3], int(r[4])) for r in rows]


def add_annotation(
    meta: MetaStore, site_id: str, day: str, text: str, created_by: str | None
) -> Annotation:
    """Store a note: InvalidRequest naming the field at fault."""
    try:
        parsed = date.fromisoformat(day.strip())
    except ValueError as exc:
        raise InvalidRequest(f"date: not a YYYY-MM-DD day: {day[:40]!r}") from exc
    text = " ".join(text.split())
    if not text or len(text) > MAX_TEXT:
        raise InvalidRequest(f"text: write the note (at most {MAX_TEXT} characters)")
    row = meta.fetchone("SELECT count(*) FROM annotations WHERE site_id = ?", (site_id,))
    if row and int(row[0]) >= MAX_PER_SITE:
        raise InvalidRequest(f"text: a site has at most {MAX_PER_SITE} annotations")
    note = Annotation(secrets.token_hex(8), site_id, parsed, text, int(time.time()))
    meta.execute(
        "INSERT INTO annotations (id, site_id, day, text, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (note.id, site_id, parsed.isoformat(), text, created_by, note.created_at),
    )
    return note


def delete_annotation(meta: MetaStore, site_id: str, annotation_id: str) -> None:
    gone = meta.execute(
        "DELETE FROM annotations WHERE site_id = ? AND id = ?", (site_id, annotation_id)
    )
    if not gone:
        raise NotFound("annotation not found")
