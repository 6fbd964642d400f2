"""API keys (digest only) and monthly usage counters (SQLite)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping

import msgspec

from app.errors import NotFound
from app.storage.meta import MetaStore

SCOPES = ("stats:read", "events:write", "sites:read", "sites:write", "privacy:write")


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    key_prefix: str
    digest: bytes
    name: str
    scopes: tuple[str, ...]
    site_id: str | None  # None: every site its creator owns
    created_by: str
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None
    created_at: int
    updated_at: int

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def public(self) -> dict[str, object]:
        """The Aizen key shape: unix-second times and a masked preview, never the digest."""
        return {
            "id": self.id,
            "site_id": self.site_id,
            "created_by_user_id": self.created_by,
            "name": self.name,
            "scope": " ".join(self.scopes),  # Aizen's field; several scopes space-separated
            "key_prefix": self.key_prefix,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "preview": f"{self.key_prefix}_{'*' * 32}",
        }


_COLUMNS = (
    "id, key_prefix, digest, name, scopes, site_id, created_by, expires_at, last_used_at,"
    " revoked_at, created_at, updated_at"
)


def _key(row: tuple[object, ...]) -> ApiKey:
    values = dict(zip(_COLUMNS.replace(" ", "").split(","), row, strict=True))
    values["scopes"] = tuple(str(values["scopes"]).split())
    return msgspec.convert(values, ApiKey)


def insert_key(
    meta: MetaStore,
    *,
    key_prefix: str,
    digest: bytes,
    name: str,
    scopes: Iterable[str],
    site_id: str | None,
    created_by: str,
    expires_at: int | None,
) -> ApiKey:
    """Store a new key (its token was made by app.auth.tokens and is never stored)."""
    now = int(time.time())
    key = ApiKey(
        id=secrets.token_hex(16),
        key_prefix=key_prefix,
        digest=digest,
        name=name,
        scopes=tuple(scopes),
        site_id=site_id,
        created_by=created_by,
        expires_at=expires_at,
        last_used_at=None,
        revoked_at=None,
        created_at=now,
        updated_at=now,
    )
    meta.execute(
        f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.id,
            key.key_prefix,
            key.digest,
            key.name,
            " ".join(key.scopes),
            key.site_id,
            key.created_by,
            key.expires_at,
            None,
            None,
            now,
            now,
        ),
    )
    return key


def key_by_prefix(meta: MetaStore, key_prefix: str) -> ApiKey | None:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM api_keys WHERE key_prefix = ?", (key_prefix,))
    return None if row is None else _key(row)


def keys_of_site(meta: MetaStore, site_id: str) -> list[ApiKey]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM api_keys WHERE site_id = ? ORDER BY created_at, rowid", (site_id,)
    )
    return [_key(r) for r in rows]


def all_keys(meta: MetaStore, created_by: str | None = None) -> list[ApiKey]:
    sql = f"SELECT {_COLUMNS} FROM api_keys"
    params: tuple[str, ...] = ()
    if created_by is not None:
        sql += " WHERE created_by = ?"
        params = (created_by,)
    return [_key(r) for r in meta.fetchall(sql + " ORDER BY created_at, rowid", params)]


def revoke_key(meta: MetaStore, key_id: str, site_id: str | None = None) -> ApiKey:
    """Mark a key revoked (idempotent); with site_id, only a key of that site."""
    now = int(time.time())
    sql = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?), updated_at = ? WHERE id = ?"
    params: tuple[object, ...] = (now, now, key_id)
    if site_id is not None:
        sql += " AND site_id = ?"
        params = (*params, site_id)
    if meta.execute(sql, params) == 0:
        raise NotFound("API key not found")
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
    assert row is not None
    return _key(row)


# usage


def record_usage(
    meta: MetaStore, counts: Mapping[tuple[str, str], int], last_used: Mapping[str, int]
) -> None:
    """Add batched request counts per (subject, month) and keys' last_used_at, in one commit."""
    with meta.transaction() as db:
        db.executemany(
            "INSERT INTO usage_counts (subject, month, requests) VALUES (?, ?, ?)"
            " ON CONFLICT (subject, month) DO UPDATE SET requests = requests + excluded.requests",
            [(s, m, n) for (s, m), n in counts.items()],
        )
        db.executemany(
            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
            [(t, k) for k, t in last_used.items()],
        )


def usage_count(meta: MetaStore, subject: str, month: str) -> int:
    row = meta.fetchone(
        "SELECT requests FROM usage_counts WHERE subject = ? AND month = ?", (subject, month)
    )
    return 0 if row is None else int(row[0])
