"""Share links: read-only access to one site's dashboard without signing in (SQLite)."""

from __future__ import annotations

import secrets
import time

import msgspec

from app.errors import NotFound
from app.storage.meta import MetaStore


class ShareLink(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    site_id: str
    token: str  # the /share/{token} path segment
    name: str
    password_hash: str | None
    filters: str  # fixed filter in the native API's grammar ("page=/blog/*&country=DE")
    frame_origins: str  # space-separated origins allowed to embed it, besides the site's own
    created_by: str | None
    created_at: int
    expires_at: int | None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def live(self, now: float) -> bool:
        """Not expired (a revoked link no longer exists at all)."""
        return self.expires_at is None or now < self.expires_at

    def origins(self) -> list[str]:
        return self.frame_origins.split()


_COLUMNS = (
    "id, site_id, token, name, password_hash, filters, frame_origins, created_by,"
    " created_at, expires_at"
)


def _link(row: tuple[object, ...]) -> ShareLink:
    return msgspec.convert(dict(zip(_COLUMNS.split(", "), row, strict=True)), ShareLink)


def add_share_link(
    meta: MetaStore,
    *,
    site_id: str,
    name: str,
    created_by: str | None,
    password_hash: str | None = None,
    filters: str = "",
    frame_origins: str = "",
    expires_at: int | None = None,
) -> ShareLink:
    """A new link with a fresh random token (128 bits: not guessable, not enumerable)."""
    link = ShareLink(
        id=secrets.token_hex(8),
        site_id=site_id,
        token=secrets.token_urlsafe(16),
        name=name,
        password_hash=password_hash,
        filters=filters,
        frame_origins=frame_origins,
        created_by=created_by,
        created_at=int(time.time()),
        expires_at=expires_at,
    )
    meta.execute(
        f"INSERT INTO share_links ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            link.id,
            link.site_id,
            link.token,
            link.name,
            link.password_hash,
            link.filters,
            link.frame_origins,
            link.created_by,
            link.created_at,
            link.expires_at,
        ),
    )
    return link


def share_links_of(meta: MetaStore, site_id: str) -> list[ShareLink]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM share_links WHERE site_id = ? ORDER BY created_at, rowid",
        (site_id,),
    )
    return [_link(row) for row in rows]


def share_by_token(meta: MetaStore, token: str) -> ShareLink | None:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM share_links WHERE token = ?", (token,))
    return _link(row) if row else None


def share_by_id(meta: MetaStore, share_id: str) -> ShareLink | None:
    row = meta.fetchone(f"SELECT {_COLUMNS} FROM share_links WHERE id = ?", (share_id,))
    return _link(row) if row else None


def delete_share_link(meta: MetaStore, site_id: str, share_id: str) -> None:
    """Revoke: the row goes, so the link, its password cookie and its API tokens all stop."""
    deleted = meta.execute(
        "DELETE FROM share_links WHERE site_id = ? AND id = ?", (site_id, share_id)
    )
    if deleted == 0:
        raise NotFound("share link not found")
