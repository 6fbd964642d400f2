"""Funnels per site (meta/015): a name and 2 to 8 of the site's goals, in order. What a
funnel counts is app/query/funnel.py's."""

from __future__ import annotations

import itertools
import secrets
import sqlite3
import time
from typing import Any

import msgspec

from app.errors import Conflict, InvalidRequest, NotFound
from app.storage.goals import Goal, goals_of
from app.storage.meta import MetaStore

MIN_STEPS, MAX_STEPS = 2, 8
MAX_FUNNELS = 50  # per site


class Funnel(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    name: str
    steps: tuple[Goal, ...]
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "steps": [{"goal_id": g.id, "name": g.name} for g in self.steps],
            "created_at": self.created_at,
        }


def funnels_of(meta: MetaStore, site_id: str) -> list[Funnel]:
    goals = {g.id: g for g in goals_of(meta, site_id)}
    rows = meta.fetchall(
        "SELECT id, site_id, name, steps, created_at FROM funnels WHERE site_id = ? ORDER BY name",
        (site_id,),
    )
    found = []
    for fid, sid, name, steps, created in rows:
        ids = msgspec.json.decode(steps, type=list[str])
        if all(i in goals for i in ids):  # (a deleted goal deletes its funnels: always)
            found.append(Funnel(fid, sid, name, tuple(goals[i] for i in ids), int(created)))
    return found


def funnel_of(meta: MetaStore, site_id: str, funnel_id: str) -> Funnel:
    for funnel in funnels_of(meta, site_id):
        if funnel.id == funnel_id:
            return funnel
    raise NotFound("funnel not found")


def add_funnel(meta: MetaStore, site_id: str, name: str, goal_ids: list[str]) -> Funnel:
    """Store a funnel: InvalidRequest naming the field at fault, Conflict on a taken name."""
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidRequest("name: give the funnel a name (at most 120 characters)")
    ids = [i.strip() for i in goal_ids if i.strip()]
    if not MIN_STEPS <= len(ids) <= MAX_STEPS:
        raise InvalidRequest(f"steps: a funnel has {MIN_STEPS} to {MAX_STEPS} steps")
    if any(a == b for a, b in itertools.pairwise(ids)):
        raise InvalidRequest("steps: the same goal twice in a row is one step")
    goals = {g.id: g for g in goals_of(meta, site_id)}
    unknown = [i for i in ids if i not in goals]
    if unknown:
        raise InvalidRequest(f"steps: no goal {unknown[0]!r} on this site")
    row = meta.fetchone("SELECT count(*) FROM funnels WHERE site_id = ?", (site_id,))
    if row and int(row[0]) >= MAX_FUNNELS:
        raise InvalidRequest(f"name: a site has at most {MAX_FUNNELS} funnels")
    funnel = Funnel(
        secrets.token_hex(8), site_id, name, tuple(goals[i] for i in ids), int(time.time())
    )
    try:
        meta.execute(
            "INSERT INTO funnels (id, site_id, name, steps, created_at) VALUES (?, ?, ?, ?, ?)",
            (funnel.id, site_id, name, msgspec.json.encode(ids).decode(), funnel.created_at),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"name: the site has a funnel named {name!r} already") from exc
    return funnel


def delete_funnel(meta: MetaStore, site_id: str, funnel_id: str) -> None:
    gone = meta.execute("DELETE FROM funnels WHERE site_id = ? AND id = ?", (site_id, funnel_id))
    if not gone:
        raise NotFound("funnel not found")
