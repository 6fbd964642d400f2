"""Users, their roles on sites, and UI sign-in sessions (SQLite)."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from typing import Literal

import msgspec

from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
from app.storage.meta import MetaStore

Role = Literal["owner", "admin", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "admin", "viewer")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class User(msgspec.Struct, frozen=True):
    id: str
    email: str
    password_hash: str
    is_admin: bool
    created_at: int
    # Every JWT carries it; bumping it revokes the user's JWTs issued before.
    token_version: int = 0

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "is_admin": self.is_admin,
            "created_at": self.created_at,
        }


class WebSession(msgspec.Struct, frozen=True):
    user_id: str
    csrf_token: str
    expires_at: int


_USER_COLUMNS = "id, email, password_hash, is_admin, created_at, token_version"


def normalize_email(value: str) -> str:
    """Trimmed, lower-cased address, or InvalidRequest."""
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidRequest(f"email: not a valid address: {value!r}")
    return email


def _user(row: tuple[object, ...] | None) -> User | None:
    if row is None:
        return None
    return User(
        str(row[0]), str(row[1]), str(row[2]), bool(row[3]), int(str(row[4])), int(str(row[5]))
    )


def create_user(meta: MetaStore, email: str, password_hash: str, *, admin: bool = False) -> User:
    """A new user; the very first user of an instance is always its admin."""
    email = normalize_email(email)
    user_id = secrets.token_hex(8)
    now = int(time.time())
    with meta.transaction() as db:
        first = db.execute("SELECT NOT EXISTS (SELECT 1 FROM users)").fetchone()[0]
        try:
            db.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0)",
                (user_id, email, password_hash, int(admin or bool(first)), now),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a user with email {email!r} already exists") from exc
        if first:
            _adopt_ownerless_sites(db, user_id)
    return User(user_id, email, password_hash, admin or bool(first), now)


def create_first_user(meta: MetaStore, email: str, password_hash: str) -> User | None:
    """First-run setup: the admin, or None when the instance already has users."""
    with meta.transaction() as db:
        if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
            return None
        user = User(secrets.token_hex(8), normalize_email(email), password_hash, True, 0)
        user = msgspec.structs.replace(user, created_at=int(time.time()))
        db.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, 1, ?, 0)",
            (user.id, user.email, user.password_hash, user.created_at),
        )
        _adopt_ownerless_sites(db, user.id)
    return user


def _adopt_ownerless_sites(db: sqlite3.Connection, user_id: str) -> None:
    """The instance's first user (its admin) owns every site that has no owner yet: sites
    added with `avocet site add` before any user existed would otherwise be stranded (no
    keys, no deletion, nobody who may grant the owner role). Only called while the users
    table is otherwise empty, so nobody else holds a role on those sites."""
    db.execute(
        "INSERT INTO site_members (site_id, user_id, role) SELECT s.id, ?, 'owner' FROM sites s"
        " WHERE NOT EXISTS (SELECT 1 FROM site_members m WHERE m.site_id = s.id"
        " AND m.role = 'owner')",
        (user_id,),
    )


def user_by_email(meta: MetaStore, email: str) -> User | None:
    row = meta.fetchone(
        f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email.strip().lower(),)
    )
    return _user(row)


def user_by_id(meta: MetaStore, user_id: str) -> User | None:
    return _user(meta.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)))


def first_admin(meta: MetaStore) -> User | None:
    row = meta.fetchone(
        f"SELECT {_USER_COLUMNS} FROM users WHERE is_admin = 1 ORDER BY created_at, rowid LIMIT 1"
    )
    return _user(row)


def users(meta: MetaStore) -> list[User]:
    rows = meta.fetchall(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, rowid")
    return [u for u in map(_user, rows) if u is not None]


# roles


def set_role(meta: MetaStore, site_id: str, user_id: str, role: Role) -> None:
    """Give a user a role on a site (replacing any earlier one)."""
    if role not in ROLES:
        raise InvalidRequest(f"role: must be one of {', '.join(ROLES)}")
    meta.execute(
        "INSERT INTO site_members (site_id, user_id, role) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id, user_id) DO UPDATE SET role = excluded.role",
        (site_id, user_id, role),
    )


def change_role(
    meta: MetaStore, site_id: str, actor_role: Role, user_id: str, role: Role | None
) -> None:
    """The one rule set for every change of a member's role (role None removes them): only
    an owner grants owner or changes an owner's role, and a site always keeps an owner."""
    if role is not None and role not in ROLES:
        raise InvalidRequest(f"role: must be one of {', '.join(ROLES)}")
    with meta.transaction() as db:
        rows = db.execute(
            "SELECT user_id, role FROM site_members WHERE site_id = ?", (site_id,)
        ).fetchall()
        current = dict((str(r[0]), str(r[1])) for r in rows)
        if user_id not in current:
            raise InvalidRequest("user: not a member of this site")
        before = current[user_id]
        if (before == "owner" or role == "owner") and actor_role != "owner":
            raise Forbidden("Only an owner can grant the owner role or change an owner's role.")
        owners = sum(r == "owner" for r in current.values())
        if before == "owner" and role != "owner" and owners == 1:
            raise Forbidden("A site keeps at least one owner: make someone else owner first.")
        if role is None:
            db.execute(
                "DELETE FROM site_members WHERE site_id = ? AND user_id = ?", (site_id, user_id)
            )
        else:
            db.execute(
                "UPDATE site_members SET role = ? WHERE site_id = ? AND user_id = ?",
                (role, site_id, user_id),
            )


def add_member(meta: MetaStore, site_id: str, user_id: str, role: Role) -> bool:
    """Give a non-member a role; False (nothing changed) when they already have one."""
    if role not in ROLES:
        raise InvalidRequest(f"role: must be one of {', '.join(ROLES)}")
    changed = meta.execute(
        "INSERT INTO site_members (site_id, user_id, role) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id, user_id) DO NOTHING",
        (site_id, user_id, role),
    )
    return changed > 0


def take_ownership(meta: MetaStore, site_id: str, user: User) -> None:
    """An instance admin becomes the owner of a site that has none (the way out of a site
    stranded without an owner); a site with an owner is refused: its owner grants the role."""
    if not user.is_admin:
        raise Forbidden("Only an instance admin can take ownership of a site.")
    with meta.transaction() as db:
        if db.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
            raise NotFound("site not found")
        owner = db.execute(
            "SELECT 1 FROM site_members WHERE site_id = ? AND role = 'owner' LIMIT 1", (site_id,)
        ).fetchone()
        if owner is not None:
            raise Forbidden("This site has an owner: ask them for the owner role.")
        db.execute(
            "INSERT INTO site_members (site_id, user_id, role) VALUES (?, ?, 'owner')"
            " ON CONFLICT (site_id, user_id) DO UPDATE SET role = 'owner'",
            (site_id, user.id),
        )


def effective_role(role: Role | None, user: User) -> Role | None:
    """Instance admins act at least as admins on every site, whatever their membership."""
    if user.is_admin and role in (None, "viewer"):
        return "admin"
    return role


def role_of(meta: MetaStore, site_id: str, user_id: str) -> Role | None:
    row = meta.fetchone(
        "SELECT role FROM site_members WHERE site_id = ? AND user_id = ?", (site_id, user_id)
    )
    return None if row is None else row[0]


def site_ids_of(meta: MetaStore, user_id: str, roles: tuple[Role, ...] = ROLES) -> list[str]:
    """Ids of the sites where the user holds one of `roles`, oldest first."""
    marks = ", ".join("?" for _ in roles)
    rows = meta.fetchall(
        "SELECT m.site_id FROM site_members m JOIN sites s ON s.id = m.site_id"
        f" WHERE m.user_id = ? AND m.role IN ({marks}) ORDER BY s.created_at, s.id",
        (user_id, *roles),
    )
    return [str(r[0]) for r in rows]


# sign-in sessions


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_session(meta: MetaStore, user_id: str, ttl_seconds: int) -> tuple[str, WebSession]:
    """A new session: (cookie value, session). Only the value's digest is stored."""
    token = secrets.token_urlsafe(32)
    now = int(time.time())
    session = WebSession(user_id, secrets.token_urlsafe(24), now + ttl_seconds)
    meta.execute(
        "INSERT INTO web_sessions (digest, user_id, csrf_token, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (_digest(token), user_id, session.csrf_token, now, session.expires_at),
    )
    return token, session


def session_by_token(meta: MetaStore, token: str) -> WebSession | None:
    row = meta.fetchone(
        "SELECT user_id, csrf_token, expires_at FROM web_sessions WHERE digest = ?",
        (_digest(token),),
    )
    if row is None or int(row[2]) <= time.time():
        return None
    return WebSession(str(row[0]), str(row[1]), int(row[2]))


def delete_session(meta: MetaStore, token: str) -> None:
    meta.execute(
        "DELETE FROM web_sessions WHERE digest = ? OR expires_at < ?",
        (_digest(token), int(time.time())),
    )


# settings UI: passwords, two-factor secrets, site members


class Member(msgspec.Struct, frozen=True):
    user_id: str
    email: str
    role: Role


def set_password_hash(meta: MetaStore, user_id: str, password_hash: str) -> None:
    """A new password; every JWT issued before it stops working."""
    meta.execute(
        "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ?",
        (password_hash, user_id),
    )


def bump_token_version(meta: MetaStore, user_id: str) -> None:
    """Revoke every JWT of the user issued so far."""
    meta.execute("UPDATE users SET token_version = token_version + 1 WHERE id = ?", (user_id,))


def delete_all_sessions(meta: MetaStore, user_id: str) -> None:
    meta.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))


def delete_other_sessions(meta: MetaStore, user_id: str, keep_token: str) -> None:
    """Sign the user out everywhere but the session holding `keep_token` (password changes)."""
    meta.execute(
        "DELETE FROM web_sessions WHERE user_id = ? AND digest != ?",
        (user_id, _digest(keep_token)),
    )


def totp_secret_of(meta: MetaStore, user_id: str) -> str | None:
    row = meta.fetchone("SELECT totp_secret FROM users WHERE id = ?", (user_id,))
    return None if row is None or row[0] is None else str(row[0])


def set_totp_secret(meta: MetaStore, user_id: str, secret: str | None) -> None:
    """Turn two-factor sign-in on (the sealed secret) or off (None); JWTs issued before stop
    working."""
    meta.execute(
        "UPDATE users SET totp_secret = ?, totp_last_step = NULL,"
        " token_version = token_version + 1 WHERE id = ?",
        (secret, user_id),
    )


def totp_secrets(meta: MetaStore) -> list[tuple[str, str]]:
    """(user id, stored secret) of every user with two-factor sign-in on."""
    rows = meta.fetchall("SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL")
    return [(str(r[0]), str(r[1])) for r in rows]


def reseal_totp_secret(meta: MetaStore, user_id: str, stored: str) -> None:
    """Replace the stored form of a secret (sealing a legacy clear one), nothing else."""
    meta.execute("UPDATE users SET totp_secret = ? WHERE id = ?", (stored, user_id))


def claim_totp_step(meta: MetaStore, user_id: str, step: int) -> bool:
    """Record that a code of time step `step` was used; False when it (or a later one) was
    already used: each code signs in once."""
    changed = meta.execute(
        "UPDATE users SET totp_last_step = ? WHERE id = ?"
        " AND (totp_last_step IS NULL OR totp_last_step < ?)",
        (step, user_id, step),
    )
    return changed > 0


def members_of(meta: MetaStore, site_id: str) -> list[Member]:
    """Everyone with a role on the site, owners first."""
    rows = meta.fetchall(
        "SELECT u.id, u.email, m.role FROM site_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.site_id = ?"
        " ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.email",
        (site_id,),
    )
    return [Member(str(r[0]), str(r[1]), r[2]) for r in rows]


def remove_role(meta: MetaStore, site_id: str, user_id: str) -> bool:
    """Take a user's access to a site away; False when they had none."""
    changed = meta.execute(
        "DELETE FROM site_members WHERE site_id = ? AND user_id = ?", (site_id, user_id)
    )
    return changed > 0


# two-factor recovery codes


def replace_recovery_codes(meta: MetaStore, user_id: str, digests: list[bytes]) -> None:
    """The user's recovery codes are these now (none: two-factor sign-in is off)."""
    with meta.transaction() as db:
        db.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
        db.executemany(
            "INSERT INTO recovery_codes (user_id, digest) VALUES (?, ?)",
            [(user_id, d) for d in digests],
        )


def use_recovery_code(meta: MetaStore, user_id: str, digest: bytes) -> bool:
    """Spend an unused recovery code; False when it is unknown or was used."""
    changed = meta.execute(
        "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND digest = ?"
        " AND used_at IS NULL",
        (int(time.time()), user_id, digest),
    )
    return changed > 0


def recovery_codes_left(meta: MetaStore, user_id: str) -> int:
    row = meta.fetchone(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,)
    )
    return int(row[0]) if row else 0


def delete_user(meta: MetaStore, user_id: str) -> None:
    """Remove a user (their roles, sessions, keys and codes go by cascade); refused while
    they are the only owner of a site, or the last instance admin."""
    with meta.transaction() as db:
        alone = db.execute(
            "SELECT m.site_id FROM site_members m WHERE m.user_id = ? AND m.role = 'owner'"
            " AND (SELECT count(*) FROM site_members o WHERE o.site_id = m.site_id"
            " AND o.role = 'owner') = 1",
            (user_id,),
        ).fetchall()
        if alone:
            sites = ", ".join(str(r[0]) for r in alone)
            raise Forbidden(f"this user is the only owner of site(s) {sites}: add an owner first")
        admins = db.execute(
            "SELECT count(*) FROM users WHERE is_admin = 1 AND id != ?", (user_id,)
        ).fetchone()[0]
        is_admin = db.execute("SELECT is_admin FROM users WHERE id = ?", (user_id,)).fetchone()
        if is_admin and is_admin[0] and admins == 0:
            raise Forbidden("this user is the last instance admin: make another admin first")
        db.execute("DELETE FROM users WHERE id = ?", (user_id,))
