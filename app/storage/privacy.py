"""Deletion requests in SQLite: a durable queue that survives restarts. One kind per thing
deleted: one server-side user's events ('user', the DSAR), a whole site ('site') or a
site's stats over a range of its days ('reset'); app/jobs/privacy.py carries them out."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.storage.meta import MetaStore

STATUSES = ("queued", "running", "done", "failed")
KINDS = ("user", "site", "reset")
PUBLIC_TYPES = {"user": "delete", "site": "delete_site", "reset": "reset_stats"}


class PrivacyRequest(msgspec.Struct, frozen=True):
    id: str
    kind: str
    site_id: str | None  # None once a site deletion is done (nothing of the site is kept)
    user_key: int | None
    first_day: str | None
    last_day: str | None
    status: str
    step: str | None
    requested_by: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    days: list[str] | None
    events_deleted: int
    days_rebuilt: int
    days_not_rebuilt: list[str]
    deleted: dict[str, int]
    error: str | None

    def public(self) -> dict[str, Any]:
        """The request as its status endpoint shows it (never the user_key)."""
        out: dict[str, Any] = {"request_id": self.id, "type": PUBLIC_TYPES[self.kind]}
        if self.kind == "site":
            out["site_id"] = self.site_id  # null once done: the id is deleted too
        if self.kind == "reset":
            out["from"], out["to"] = self.first_day, self.last_day
        out |= {"status": self.status, "events_deleted": self.events_deleted}
        if self.kind != "user":
            out["step"] = self.step  # the last step done: events, meta, rewrite
        if self.kind == "user":
            out |= {"days_rebuilt": self.days_rebuilt, "days_not_rebuilt": self.days_not_rebuilt}
        else:
            out["deleted"] = self.deleted
        return {
            **out,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **({"error": self.error} if self.error else {}),
        }


_COLUMNS = (
    "id, kind, site_id, user_key, first_day, last_day, status, step, requested_by,"
    " created_at, started_at, finished_at, days, events_deleted, days_rebuilt,"
    " days_not_rebuilt, deleted, error"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_iso_precise() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _from_row(row: tuple[Any, ...]) -> PrivacyRequest:
    (rid, kind, site_id, key, first, last, status, step, by, created, started, finished) = row[:12]
    (days, deleted, rebuilt, kept, others, err) = row[12:]
    return PrivacyRequest(
        id=rid,
        kind=kind,
        site_id=site_id,
        user_key=None if key is None else int(key),
        first_day=first,
        last_day=last,
        status=status,
        step=step,
        requested_by=by,
        created_at=created,
        started_at=started,
        finished_at=finished,
        days=json.loads(days) if days else None,
        events_deleted=int(deleted),
        days_rebuilt=int(rebuilt),
        days_not_rebuilt=json.loads(kept or "[]"),
        deleted=json.loads(others or "{}"),
        error=err,
    )


def create_request(
    meta: MetaStore,
    site_id: str,
    user_key: int | None,
    requested_by: str | None,
    *,
    kind: str = "user",
    first_day: str | None = None,
    last_day: str | None = None,
) -> PrivacyRequest:
    """Queue a deletion (one transaction; a site deletion also marks its site deleted, so
    from this commit on nothing reads or collects for it)."""
    rid = f"pr_{secrets.token_hex(12)}"
    # A reset deletes the raw events stamped before this instant: to the microsecond.
    now = now_iso() if kind != "reset" else now_iso_precise()
    with meta.transaction() as db:
        db.execute(
            "INSERT INTO privacy_requests (id, kind, site_id, user_key, first_day, last_day,"
            " status, requested_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            (rid, kind, site_id, user_key, first_day, last_day, requested_by, now),
        )
        if kind == "site":
            db.execute("UPDATE sites SET deleted_at = ? WHERE id = ?", (now, site_id))
    found = get_request(meta, rid)
    assert found is not None
    return found


def get_request(meta: MetaStore, request_id: str) -> PrivacyRequest | None:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM privacy_requests WHERE id = ?", (request_id,))
    return None if row is None else _from_row(row)


def unfinished(meta: MetaStore) -> list[PrivacyRequest]:
    """Queued or running requests, oldest first (to resume after a restart)."""
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM privacy_requests WHERE status IN ('queued', 'running')"
        " ORDER BY created_at, id"
    )
    return [_from_row(r) for r in rows]


def mark_running(meta: MetaStore, request_id: str, days: list[str]) -> None:
    """Running, with the days found holding the user's events (kept for a resumed run)."""
    meta.execute(
        "UPDATE privacy_requests SET status = 'running', started_at = coalesce(started_at, ?),"
        " days = ? WHERE id = ?",
        (now_iso(), json.dumps(sorted(days)), request_id),
    )


def mark_deleted(
    meta: MetaStore,
    request_id: str,
    events_deleted: int,
    others: dict[str, int] | None = None,
    step: str | None = None,
) -> None:
    """Add what a step deleted; `step`: the step now done (a resumed run skips it)."""
    found = get_request(meta, request_id)
    merged = dict(found.deleted) if found else {}
    for thing, n in (others or {}).items():
        merged[thing] = merged.get(thing, 0) + n
    meta.execute(
        "UPDATE privacy_requests SET events_deleted = events_deleted + ?, deleted = ?,"
        " step = coalesce(?, step) WHERE id = ?",
        (events_deleted, json.dumps(merged, sort_keys=True), step, request_id),
    )


def mark_step(meta: MetaStore, request_id: str, step: str) -> None:
    meta.execute("UPDATE privacy_requests SET step = ? WHERE id = ?", (step, request_id))


def mark_done(
    meta: MetaStore, request_id: str, days_rebuilt: int, days_not_rebuilt: list[str]
) -> None:
    meta.execute(
        "UPDATE privacy_requests SET status = 'done', finished_at = ?, days_rebuilt = ?,"
        " days_not_rebuilt = ?, error = NULL WHERE id = ?",
        (now_iso(), days_rebuilt, json.dumps(sorted(days_not_rebuilt)), request_id),
    )


def mark_site_deletion_done(meta: MetaStore, request_id: str) -> None:
    """Done, and the deleted site's id gone from the row too."""
    meta.execute(
        "UPDATE privacy_requests SET status = 'done', step = 'done', finished_at = ?,"
        " site_id = NULL, error = NULL WHERE id = ?",
        (now_iso(), request_id),
    )


def mark_failed(meta: MetaStore, request_id: str, error: str) -> None:
    meta.execute(
        "UPDATE privacy_requests SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
        (now_iso(), error[:500], request_id),
    )
