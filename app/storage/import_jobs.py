"""Import jobs (SQLite, migration meta/011): one row per import, its progress and summary.
What an import wrote into events.duckdb is recorded there (app/storage/imports.py)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from app.errors import NotFound
from app.storage.meta import MetaStore

Source = Literal["plausible", "umami", "goatcounter", "ga4"]
SOURCES: tuple[str, ...] = ("plausible", "umami", "goatcounter", "ga4")
Status = Literal["queued", "running", "done", "failed", "duplicate", "deleted"]


class ImportJob(msgspec.Struct, frozen=True):
    seq: int
    id: str
    site_id: str
    source: str
    status: str
    content_hash: str
    files: list[str]
    overlap: str | None
    done_rows: int
    total_rows: int | None
    summary: dict[str, Any] | None
    error: str | None
    created_at: str
    finished_at: str | None

    def public(self) -> dict[str, Any]:
        """The job as the API and `avocet import list --json` show it (seq stays inside)."""
        out = msgspec.structs.asdict(self)
        del out["seq"]
        return out


_COLUMNS = (
    "seq, id, site_id, source, status, content_hash, files, overlap, done_rows, total_rows,"
    " summary, error, created_at, finished_at"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _job(row: tuple[Any, ...]) -> ImportJob:
    values = list(row)
    values[6] = json.loads(values[6])
    values[10] = json.loads(values[10]) if values[10] else None
    return ImportJob(*values)


def create_job(
    meta: MetaStore,
    site_id: str,
    source: str,
    content_hash: str,
    files: list[str],
    overlap: str | None,
) -> ImportJob:
    """A new queued job with a fresh id and the next seq."""
    job_id = f"imp_{secrets.token_hex(8)}"
    meta.execute(
        "INSERT INTO import_jobs (id, site_id, source, status, content_hash, files, overlap,"
        " created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
        (job_id, site_id, source, content_hash, json.dumps(files), overlap, _now()),
    )
    return get_job(meta, job_id)


def get_job(meta: MetaStore, job_id: str, site_id: str | None = None) -> ImportJob:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM import_jobs WHERE id = ?", (job_id,))
    if row is None or (site_id is not None and row[2] != site_id):
        raise NotFound(f"no import job {job_id!r}")
    return _job(row)


def list_jobs(meta: MetaStore, site_id: str | None = None) -> list[ImportJob]:
    """Jobs newest first (one site's, or all)."""
    where, params = ("WHERE site_id = ?", (site_id,)) if site_id else ("", ())
    rows = meta.fetchall(f"SELECT {_COLUMNS} FROM import_jobs {where} ORDER BY seq DESC", params)
    return [_job(r) for r in rows]


def set_progress(meta: MetaStore, job_id: str, done: int, total: int | None) -> None:
    meta.execute(
        "UPDATE import_jobs SET status = 'running', done_rows = ?, total_rows = ? WHERE id = ?",
        (done, total, job_id),
    )


def finish_job(
    meta: MetaStore,
    job_id: str,
    status: Status,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> ImportJob:
    meta.execute(
        "UPDATE import_jobs SET status = ?, summary = ?, error = ?, finished_at = ? WHERE id = ?",
        (status, json.dumps(summary) if summary is not None else None, error, _now(), job_id),
    )
    return get_job(meta, job_id)


def fail_unfinished(meta: MetaStore) -> int:
    """Mark jobs left queued or running by a process that stopped as failed (their
    DuckDB transaction never committed, so they added nothing)."""
    return meta.execute(
        "UPDATE import_jobs SET status = 'failed', error = 'interrupted: the process stopped"
        " before the import finished; nothing was added', finished_at = ?"
        " WHERE status IN ('queued', 'running')",
        (_now(),),
    )
