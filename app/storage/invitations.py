"""Invitations to a site: a single-use link the invitee follows to join (SQLite).

The inviter never sets the invitee's password: an address without an account gets one only
when its owner follows the link and chooses a password. Only a digest of the link's token is
stored, so a copy of meta.sqlite3 can't be used to accept an invitation."""

from __future__ import annotations

import hashlib
import secrets
import time

import msgspec

from app.errors import InvalidRequest
from app.storage.accounts import ROLES, Role, normalize_email
from app.storage.meta import MetaStore

INVITATION_TTL = 7 * 24 * 3600
_COLUMNS = "id, site_id, email, role, invited_by, created_at, expires_at, accepted_at"


class Invitation(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    email: str
    role: Role
    invited_by: str | None
    created_at: int
    expires_at: int
    accepted_at: int | None

    def usable(self, now: float) -> bool:
        return self.accepted_at is None and now < self.expires_at


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _invitation(row: tuple[object, ...] | None) -> Invitation | None:
    if row is None:
        return None
    return msgspec.convert(dict(zip(_COLUMNS.split(", "), row, strict=True)), Invitation)


def create_invitation(
    meta: MetaStore, site_id: str, email: str, role: Role, invited_by: str
) -> tuple[str, Invitation]:
    """A new invitation: (the link's token, shown once, and the invitation). An earlier open
    invitation of the same address to the same site is replaced."""
    if role not in ROLES:
        raise InvalidRequest(f"role: must be one of {', '.join(ROLES)}")
    email = normalize_email(email)
    token = secrets.token_urlsafe(32)
    now = int(time.time())
    invitation = Invitation(
        secrets.token_hex(8), site_id, email, role, invited_by, now, now + INVITATION_TTL, None
    )
    with meta.transaction() as db:
        db.execute(
            "DELETE FROM invitations WHERE site_id = ? AND email = ? AND accepted_at IS NULL",
            (site_id, email),
        )
        db.execute(
            "INSERT INTO invitations (id, digest, site_id, email, role, invited_by, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                invitation.id,
                _digest(token),
                site_id,
                email,
                role,
                invited_by,
                now,
                invitation.expires_at,
            ),
        )
    return token, invitation


def invitation_by_token(meta: MetaStore, token: str) -> Invitation | None:
    """The open, unexpired invitation of a link's token, else None."""
    found = _invitation(
        meta.fetchone(f"SELECT {_COLUMNS} FROM invitations WHERE digest = ?", (_digest(token),))
    )
    return found if found is not None and found.usable(time.time()) else None


def claim_invitation(meta: MetaStore, invitation_id: str) -> bool:
    """Mark the invitation used; False when it was used (or revoked) meanwhile."""
    changed = meta.execute(
        "UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL",
        (int(time.time()), invitation_id),
    )
    return changed > 0


def open_invitations(meta: MetaStore, site_id: str) -> list[Invitation]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM invitations WHERE site_id = ? AND accepted_at IS NULL"
        " AND expires_at > ? ORDER BY created_at",
        (site_id, int(time.time())),
    )
    return [i for i in map(_invitation, rows) if i is not None]


def revoke_invitation(meta: MetaStore, site_id: str, invitation_id: str) -> bool:
    changed = meta.execute(
        "DELETE FROM invitations WHERE site_id = ? AND id = ? AND accepted_at IS NULL",
        (site_id, invitation_id),
    )
    return changed > 0
