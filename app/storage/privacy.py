"""Privacy (DSAR) deletion requests in SQLite: a durable queue that survives restarts."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec

from app.storage.meta import MetaStore

STATUSES = ("queued", "running", "done", "failed")


class PrivacyRequest(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    user_key: int
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    days: list[str] | None
    events_deleted: int
    days_rebuilt: int
    days_not_rebuilt: list[str]
    error: str | None

    def public(self) -> dict[str, Any]:
        """The request as its status endpoint shows it (never the user_key)."""
        return {
            "request_id": self.id,
            "type": "delete",
            "status": self.status,
            "events_deleted": self.events_deleted,
            "days_rebuilt": self.days_rebuilt,
            "days_not_rebuilt": self.days_not_rebuilt,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **({"error": self.error} if self.error else {}),
        }


_COLUMNS = (
    "id, site_id, user_key, status, created_at, started_at, finished_at, days,"
    " events_deleted, days_rebuilt, days_not_rebuilt, error"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _from_row(row: tuple[Any, ...]) -> PrivacyRequest:
    (rid, site_id, key, status, created, started, finished, days, deleted, rebuilt, kept, err) = row
    return PrivacyRequest(
        id=rid,
        site_id=site_id,
        user_key=int(key),
        status=status,
        created_at=created,
        started_at=started,
        finished_at=finished,
        days=json.loads(days) if days else None,
        events_deleted=int(deleted),
        days_rebuilt=int(rebuilt),
        days_not_rebuilt=json.loads(kept or "[]"),
        error=err,
    )


def create_request(
    meta: MetaStore, site_id: str, user_key: int, requested_by: str | None
) -> PrivacyRequest:
    rid = f"pr_{secrets.token_hex(12)}"
    meta.execute(
        "INSERT INTO privacy_requests (id, site_id, user_key, status, requested_by, created_at)"
        " VALUES (?, ?, ?, 'queued', ?, ?)",
        (rid, site_id, user_key, requested_by, now_iso()),
    )
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


def mark_deleted(meta: MetaStore, request_id: str, events_deleted: int) -> None:
    meta.execute(
        "UPDATE privacy_requests SET events_deleted = events_deleted + ? WHERE id = ?",
        (events_deleted, request_id),
    )


def mark_done(
    meta: MetaStore, request_id: str, days_rebuilt: int, days_not_rebuilt: list[str]
) -> None:
    meta.execute(
        "UPDATE privacy_requests SET status = 'done', finished_at = ?, days_rebuilt = ?,"
        " days_not_rebuilt = ?, error = NULL WHERE id = ?",
        (now_iso(), days_rebuilt, json.dumps(sorted(days_not_rebuilt)), request_id),
    )


def mark_failed(meta: MetaStore, request_id: str, error: str) -> None:
    meta.execute(
        "UPDATE privacy_requests SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
        (now_iso(), error[:500], request_id),
    )
