"""`avocet import umami --from-db postgresql://...`: Umami's PostgreSQL database, read only.

One read-only REPEATABLE READ transaction (a consistent snapshot; the server refuses any
write in it) copies one website's rows of website_event, session, event_data and revenue
(v3) to CSV files with COPY ... TO STDOUT, in a fixed order, then the CSV importer
(app/imports/umami.py) reads them: the same database twice hashes the same, so a second
import adds nothing. Only the columns the import uses are read (never session.ip)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import InvalidRequest

if TYPE_CHECKING:
    import psycopg

# The columns read, by table, when the database has them (Umami v2 and v3 differ; see
# prisma/schema.prisma and the migrations in umami-software/umami).
COLUMNS: dict[str, tuple[str, ...]] = {
    "website_event": (
        "event_id", "website_id", "session_id", "visit_id", "created_at", "url_path",
        "url_query", "referrer_path", "referrer_query", "referrer_domain", "page_title",
        "event_type", "event_name", "hostname", "utm_source", "utm_medium", "utm_campaign",
        "utm_content", "utm_term",
    ),
    "session": (
        "session_id", "website_id", "hostname", "browser", "os", "device", "screen",
        "language", "country", "region", "subdivision1", "city", "created_at",
    ),
    "event_data": (
        "event_data_id", "website_id", "website_event_id", "data_key", "string_value",
        "number_value", "date_value", "data_type", "created_at",
    ),
    "revenue": (
        "revenue_id", "website_id", "session_id", "event_id", "event_name", "currency",
        "revenue", "created_at",
    ),
}  # fmt: skip
ORDER = {
    "website_event": ("created_at", "event_id"),
    "session": ("session_id",),
    "event_data": ("website_event_id", "data_key", "event_data_id"),
    "revenue": ("event_id", "revenue_id"),
}


class DatabaseError(InvalidRequest):
    """The database can't be read as Umami's."""


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}@{tail}"


def dump(url: str, website: str | None, folder: Path) -> tuple[list[Path], str]:
    """The website's tables as CSV files in folder, and the website's id."""
    import psycopg
    from psycopg import sql

    if not url.startswith(("postgresql://", "postgres://")):
        raise DatabaseError("--from-db: a postgresql://user@host/database URL")
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseError(f"--from-db: can't connect to {_redacted(url)}: {exc}") from None
    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                [list(COLUMNS)],
            )
            present: dict[str, set[str]] = {}
            for table, column in cur.fetchall():
                present.setdefault(table, set()).add(column)
            if "website_event" not in present:
                raise DatabaseError(
                    f"--from-db: {_redacted(url)} has no website_event table: not Umami's"
                    " database (or another schema is first on its search_path)"
                )
            website = _website(cur, website)
            files: list[Path] = []
            for table, wanted in COLUMNS.items():
                have = present.get(table)
                if not have:
                    continue
                cols = [c for c in wanted if c in have]
                order = [c for c in ORDER[table] if c in have]
                query = sql.SQL(
                    "COPY (SELECT {cols} FROM {table} WHERE website_id = {website}"
                    " ORDER BY {order}) TO STDOUT WITH (FORMAT csv, HEADER)"
                ).format(
                    cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
                    table=sql.Identifier(table),
                    website=sql.Literal(website),
                    order=sql.SQL(", ").join(sql.Identifier(c) for c in order),
                )
                target = folder / f"{table}.csv"
                with target.open("wb") as out, cur.copy(query) as copy:
                    for chunk in copy:
                        out.write(chunk)
                files.append(target)
    except psycopg.Error as exc:
        raise DatabaseError(f"--from-db: reading {_redacted(url)} failed: {exc}") from None
    finally:
        conn.close()
    return files, website


def _website(cur: psycopg.Cursor[Any], website: str | None) -> str:
    """The website to import: the one named, or the database's only one."""
    cur.execute(
        "SELECT website_id::text, name, domain FROM website WHERE deleted_at IS NULL"
        " ORDER BY created_at, website_id"
    )
    sites = [(str(r[0]), str(r[1]), str(r[2] or "")) for r in cur.fetchall()]
    listed = "; ".join(f"{i} ({name}, {domain})" for i, name, domain in sites)
    if website:
        if website not in {i for i, _, _ in sites}:
            raise DatabaseError(f"--website: no Umami website {website} here ({listed})")
        return website
    if len(sites) == 1:
        return sites[0][0]
    if not sites:
        raise DatabaseError("--from-db: the database has no websites")
    raise DatabaseError(f"--website: the database holds {len(sites)} websites: {listed}")
