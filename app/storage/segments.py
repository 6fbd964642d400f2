"""Segments (meta/017): a site's saved filter sets, applied by the dashboard in one click.
A segment's query is the filters in the dashboard's URL grammar, checked by the API
(app/api/segments.py) before it is stored."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

import msgspec

from app.errors import Conflict, InvalidRequest, NotFound
from app.storage.meta import MetaStore

MAX_SEGMENTS = 100  # per site


class Segment(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    name: str
    query: str
    created_at: int

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "filters": self.query}


def segments_of(meta: MetaStore, site_id: str) -> list[Segment]:
    rows = meta.fetchall(
        "SELECT id, site_id, name, query, created_at FROM segments WHERE site_id = ? ORDER BY name",
        (site_id,),
    )
    return [Segment(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]


def add_segment(
    meta: MetaStore, site_id: str, name: str, query: str, created_by: str | None
) -> Segment:
    """Store a segment (query: checked filters); InvalidRequest / Conflict name the field."""
    name = " ".join(name.split())
    if not name or len(name) > 80:
        raise InvalidRequest("name: give the segment a name (at most 80 characters)")
    row = meta.fetchone("SELECT count(*) FROM segments WHERE site_id = ?", (site_id,))
    if row and int(row[0]) >= MAX_SEGMENTS:
        raise InvalidRequest(f"name: a site has at most {MAX_SEGMENTS} segments")
    segment = Segment(secrets.token_hex(8), site_id, name, query, int(time.time()))
    try:
        meta.execute(
            "INSERT INTO segments (id, site_id, name, query, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (segment.id, site_id, name, query, created_by, segment.created_at),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"name: the site has a segment named {name!r} already") from exc
    return segment


def delete_segment(meta: MetaStore, site_id: str, segment_id: str) -> None:
    if not meta.execute("DELETE FROM segments WHERE site_id = ? AND id = ?", (site_id, segment_id)):
        raise NotFound("segment not found")
