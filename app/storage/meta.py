"""SQLite store for the small, mutable things: sites, salts (and later users, keys, goals)."""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.errors import InvalidRequest
from app.storage.migrate import migrations

_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # URL-safe, no look-alikes, no leading '-'
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


BUSY_TIMEOUT_MS = 5000
_SITE_COLUMNS = (
    "id, domain, name, timezone, created_at, secret, day_zone, raw_retention_days, retention_days"
)


class Site(msgspec.Struct, frozen=True):
    id: str
    domain: str
    name: str
    timezone: str
    created_at: str
    secret: bytes
    # The zone the site's stored days are in (migration meta/005); == timezone but briefly
    # after a timezone change.
    day_zone: str
    # Retention in days (migration meta/010); None: the instance's default. retention_days
    # 0: forever.
    raw_retention_days: int | None = None
    retention_days: int | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def settled_day_zone(self) -> str | None:
        """The zone all of the site's stored days are in; None while a timezone change is
        being applied (new events already get the new zone's days, older ones not yet)."""
        return self.day_zone if self.day_zone == self.timezone else None

    def public(self) -> dict[str, str]:
        """The site as shown to its owner (never the secret)."""
        return {
            "id": self.id,
            "domain": self.domain,
            "name": self.name,
            "timezone": self.timezone,
            "created_at": self.created_at,
        }


def normalize_domain(value: str) -> str:
    """'https://WWW.Example.com/path' -> 'example.com'; raises InvalidRequest when not a host."""
    host = value.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host).split("/", 1)[0].split(":", 1)[0]
    host = host.removeprefix("www.")
    if not _DOMAIN.match(host):
        raise InvalidRequest(f"not a valid domain: {value!r}")
    return host


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone of that name, or InvalidRequest: the one check of every zone a client
    names. The name is a path into the zone database, so a directory of it ("America"), a
    name too long for the file system or a file that isn't a zone raise OSError or
    ValueError there, not only ZoneInfoNotFoundError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        shown = name if len(name) <= 64 else f"{name[:64]}..."
        raise InvalidRequest(f"unknown timezone: {shown!r}") from exc


def check_timezone(name: str) -> str:
    """The IANA zone name, or InvalidRequest."""
    zone_named(name)
    return name


def new_site_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


class MetaStore:
    """One SQLite connection shared by threads, serialised by a lock (rows are tiny)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # A deleted row's bytes are overwritten with zeros, not left in a free slot: a
        # destroyed salt must not stay readable in the file (see _scrub).
        self._db.execute("PRAGMA secure_delete=ON")
        self._lock = threading.Lock()
        self._scrub_pending = False
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            current = self._db.execute("PRAGMA user_version").fetchone()[0]
            for migration in migrations("meta"):
                if migration.version <= current:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                for statement in _statements(migration.sql):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {migration.version:d}")
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def data_version(self) -> int:
        """Changes whenever anyone commits (cheap: no table is read). SQLite's data_version
        counts other connections' commits; total_changes counts this connection's."""
        with self._lock:
            other = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            return (other << 32) + self._db.total_changes

    # plain access for the other storage modules (app/storage/accounts.py, keys.py, goals.py)

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside BEGIN IMMEDIATE .. COMMIT (ROLLBACK on error), locked."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # sites

    def add_site(self, domain: str, name: str | None = None, timezone: str = "UTC") -> Site:
        """Create a site with a fresh public id and secret."""
        domain = normalize_domain(domain)
        zone = check_timezone(timezone)
        site = Site(
            id=new_site_id(),
            domain=domain,
            name=(name or domain).strip()[:200] or domain,
            timezone=zone,
            created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            secret=secrets.token_bytes(32),
            day_zone=zone,
        )
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO sites (id, domain, name, timezone, secret, created_at, day_zone)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        site.id,
                        site.domain,
                        site.name,
                        site.timezone,
                        site.secret,
                        site.created_at,
                        site.day_zone,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidRequest(f"a site with domain {domain!r} already exists") from exc
        return site

    def sites(self) -> list[Site]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SITE_COLUMNS} FROM sites WHERE deleted_at IS NULL"
                " ORDER BY created_at, id"
            ).fetchall()
        return [Site(*row) for row in rows]

    def update_site(
        self,
        site_id: str,
        *,
        domain: str | None = None,
        name: str | None = None,
        timezone: str | None = None,
    ) -> Site | None:
        """Change a site's domain, name or timezone; None when there is no such site."""
        changes: dict[str, str] = {}
        if domain is not None:
            changes["domain"] = normalize_domain(domain)
        if name is not None:
            changes["name"] = name.strip()[:200] or changes.get("domain", "")
        if timezone is not None:
            changes["timezone"] = check_timezone(timezone)
        changes = {k: v for k, v in changes.items() if v}
        with self._lock:
            if "domain" in changes:
                # A name never set by hand (still the domain) follows a new domain; a form
                # that sends the old domain back as the name has not set it by hand either.
                now = self._db.execute(
                    "SELECT domain, name FROM sites WHERE id = ?", (site_id,)
                ).fetchone()
                if now and now[1] == now[0] and changes.get("name", now[0]) in (now[0], ""):
                    changes["name"] = changes["domain"]
            if changes:  # column names come from the fixed keys above, never from input
                sets = ", ".join(f"{column} = ?" for column in changes)
                try:
                    self._db.execute(
                        f"UPDATE sites SET {sets} WHERE id = ?", (*changes.values(), site_id)
                    )
                except sqlite3.IntegrityError as exc:
                    raise InvalidRequest(f"a site with domain {domain!r} already exists") from exc
            row = self._db.execute(
                f"SELECT {_SITE_COLUMNS} FROM sites WHERE id = ? AND deleted_at IS NULL",
                (site_id,),
            ).fetchone()
        return None if row is None else Site(*row)

    def set_retention(self, site_id: str, raw_days: int | None, total_days: int | None) -> None:
        """A site's own retention in days (None: the instance's default; total 0: forever);
        the caller has checked raw <= total against the effective values."""
        with self._lock:
            self._db.execute(
                "UPDATE sites SET raw_retention_days = ?, retention_days = ? WHERE id = ?",
                (raw_days, total_days, site_id),
            )

    def set_day_zone(self, site_id: str, zone: str) -> None:
        """Record the zone the site's stored days are now in (after re-daying them)."""
        with self._lock:
            self._db.execute("UPDATE sites SET day_zone = ? WHERE id = ?", (zone, site_id))

    def delete_site(self, site_id: str) -> bool:
        """Remove a site's row and (by cascade) its salts, roles, keys and goals; the
        deletion job (app/storage/purge.py) removes the rest first."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM sites WHERE id = ?", (site_id,)).rowcount
            if deleted:
                self._scrub()
            return deleted > 0

    def scrub_now(self) -> bool:
        """After deleting rows that must leave the disk: truncate the WAL now (see _scrub)."""
        with self._lock:
            return self._scrub()

    # the stores beside this one (migration meta/008)

    def record_store(self, name: str) -> None:
        """Note that this instance has opened the store `name` (kept when already noted)."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO stores (name, created_at) VALUES (?, ?)", (name, now)
            )

    def has_store(self, name: str) -> bool:
        """Whether this instance has opened the store `name` before."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone()
        return row is not None

    def is_blank(self) -> bool:
        """No site and no user: what a freshly created meta.sqlite3 holds."""
        with self._lock:
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM sites) OR EXISTS (SELECT 1 FROM users)"
            ).fetchone()
        return not row[0]

    # salts

    def salt(self, site_id: str, day: str) -> bytes:
        """The salt of one site-day, created on first use (the day before stays readable)."""
        with self._lock:
            row = self._db.execute(
                "SELECT salt FROM salts WHERE site_id = ? AND day = ?", (site_id, day)
            ).fetchone()
            if row:
                return bytes(row[0])
            salt = secrets.token_bytes(16)
            self._db.execute(
                "INSERT INTO salts (site_id, day, salt) VALUES (?, ?, ?)", (site_id, day, salt)
            )
            return salt

    def destroy_salts_before(self, site_id: str, day: str) -> int:
        """Delete a site's salts of days before `day`, overwritten on disk; returns how
        many went."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM salts WHERE site_id = ? AND day < ?", (site_id, day)
            )
            if cur.rowcount:
                self._scrub()
            return cur.rowcount

    def destroy_expired_salts(self, now: datetime) -> int:
        """Delete every site's salts of days before its local yesterday (a salt serves its
        day and, for late events, the next); returns how many went. Run whenever the store
        is opened, so salts never outlive their promise while no server runs."""
        gone = 0
        with self._lock:
            rows = self._db.execute("SELECT id, timezone FROM sites").fetchall()
            for site_id, zone in rows:
                today = now.astimezone(_zone_or_latest(zone)).date()
                gone += self._db.execute(
                    "DELETE FROM salts WHERE site_id = ? AND day < ?",
                    (site_id, (today - timedelta(days=1)).isoformat()),
                ).rowcount
            if gone:
                self._scrub()
        return gone

    def scrub(self) -> bool:
        """Finish an earlier destruction whose WAL truncation had to wait for a reader;
        True when nothing is left to do (cheap: no statement unless one is pending)."""
        if not self._scrub_pending:
            return True
        with self._lock:
            return self._scrub()

    def _scrub(self) -> bool:
        """Under the lock, after a delete: write the WAL back into the file and truncate it.
        secure_delete zeroes the row in the new page image, but the WAL keeps the page's
        older images, and the main file its last checkpointed one, until then. Never waits:
        a reader in another process (a CLI command, a backup's copy) holding an older
        snapshot makes it return False and leaves it pending for scrub()."""
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError:
            busy = 1
        finally:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._scrub_pending = bool(busy)
        return not busy


def _zone_or_latest(name: str) -> ZoneInfo:
    """The site's zone; for a name that no longer loads (a zone database without it), the
    zone whose day begins last, so no salt that may still serve is destroyed early."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("Etc/GMT+12")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations have no ';' inside literals)."""
    without_comments = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in without_comments.split(";") if s.strip()]
