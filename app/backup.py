"""Backup, restore, doctor and CSV export of a data dir (DuckDB events + SQLite meta).

A backup is a directory laid out like a data dir (events.duckdb, meta.sqlite3, jwt.secret
and totp.key when present, backup.json), so `avocet serve --data-dir BACKUP` or `avocet
restore BACKUP` use it as is. The DuckDB copy is taken in one read transaction: a snapshot
of the committed state when it began, while ingestion goes on committing (DuckDB's MVCC);
SQLite is copied with its online backup API (consistent even while the server writes),
without the daily salts. Backups are owner-only (folder 0700, files 0600) and never go
inside the data dir or Avocet's own files; the server writes them only inside its backup
root."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import duckdb

from app.errors import AppError, InvalidRequest
from app.storage.events import COLUMNS, EventStore, StoreLocked
from app.storage.files import private_dir, tighten
from app.storage.meta import MetaStore
from app.storage.migrate import latest_version
from app.storage.rollups import ROLLUP_COLUMNS
from app.storage.store import Store

if TYPE_CHECKING:
    from app.storage.clickhouse.store import ClickHouseEventStore

EVENTS_FILE = "events.duckdb"
META_FILE = "meta.sqlite3"
SECRET_FILE = "jwt.secret"
# The key that seals TOTP secrets in meta.sqlite3: without it, a restored instance can't
# check any user's second factor.
TOTP_KEY_FILE = "totp.key"
MANIFEST_FILE = "backup.json"
DATA_FILES = (
    EVENTS_FILE,
    f"{EVENTS_FILE}.wal",
    f"{EVENTS_FILE}.journal",  # batches not yet in the events file: they belong to it alone
    META_FILE,
    f"{META_FILE}-wal",
    f"{META_FILE}-shm",
    SECRET_FILE,
    TOTP_KEY_FILE,
    MANIFEST_FILE,
)
# Avocet's code and the folder it serves files from: a backup there could be downloaded.
APP_DIR = Path(__file__).resolve().parent
STATIC_DIR = APP_DIR.parent / "static"
# Columns never exported: pseudonymous visitor / session / user identifiers.
PRIVATE_COLUMNS = frozenset({"visitor_id", "session_id", "user_key"})
# events.csv's columns: the events table's (both stores: EVENT_SCHEMA), ids left out.
EXPORT_COLUMNS = tuple(c for c in COLUMNS if c not in PRIVATE_COLUMNS)

Progress = Callable[[str], None]


class BackupError(AppError):
    status = 409
    code = "conflict"


class BackupRefused(InvalidRequest):
    """A destination a backup may not be written to."""


def _quiet(_: str) -> None:
    pass


def check_target(dest: Path, data_dir: Path, root: Path | None = None) -> Path:
    """The resolved destination of a backup (symbolic links followed), refused inside the
    data dir, Avocet's code or its static files, and, when root is given (a backup the
    server writes on an API call), anywhere but a new folder inside root."""
    try:
        dest = dest.resolve()
        zones = (
            ("the data dir", data_dir.resolve()),
            ("Avocet's code", APP_DIR),
            ("Avocet's static files", STATIC_DIR.resolve()),
        )
        inside = root is None or root.resolve() in dest.parents
    except (OSError, ValueError) as exc:
        raise BackupRefused(f"{dest}: not a usable path ({exc})") from exc
    for name, zone in zones:
        if dest == zone or zone in dest.parents or dest in zone.parents:
            raise BackupRefused(f"{dest}: the backup must go outside {name} ({zone})")
    if not inside:
        raise BackupRefused(
            f"{dest}: the server writes backups only into a new folder inside its backup"
            f" directory {root} (the backup_dir setting)"
        )
    return dest


def check_destination(dest: Path, *, force: bool = False) -> None:
    """A backup or restore target must be missing or empty (unless force)."""
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} exists and is not a directory")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise BackupError(f"{dest} is not empty (use an empty directory, or --force)")


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'"
        " ORDER BY table_name",
        [database],
    ).fetchall()
    return [str(r[0]) for r in rows]


def row_counts(store: EventStore) -> dict[str, int]:
    """Rows per table of a store (schema_version aside)."""
    database = str(store.query("SELECT current_database()")[0][0])
    with store.reading() as cur:
        tables = _tables(cur, database)
    return {
        t: int(store.query(f'SELECT count(*) FROM "{t}"')[0][0])
        for t in tables
        if t != "schema_version"
    }


def copy_events(
    con: duckdb.DuckDBPyConnection, dest_file: Path, progress: Progress = _quiet
) -> dict[str, int]:
    """Copy every table of con's database into a new DuckDB file with the same schema (the
    migrations make it; then rows are copied in one read snapshot). Returns rows per table."""
    fresh = EventStore(dest_file)  # creates the schema exactly as a server would
    fresh.close()
    source = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    alias = f"avocet_backup_{int(time.time() * 1000)}"
    counts: dict[str, int] = {}
    con.execute(f"ATTACH '{_sql_path(dest_file)}' AS {alias}")
    try:
        con.execute("BEGIN")
        try:
            for table in _tables(con, source):
                if table == "schema_version":
                    continue
                progress(f"copying {table}...")
                origin = f'"{source}".main."{table}"'
                con.execute(f'INSERT INTO {alias}.main."{table}" SELECT * FROM {origin}')
                row = con.execute(f"SELECT count(*) FROM {origin}").fetchone()
                counts[table] = int(row[0]) if row else 0
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute(f"CHECKPOINT {alias}")
    finally:
        con.execute(f"DETACH {alias}")
    return counts


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


def copy_meta(source: Path, dest_file: Path) -> None:
    """SQLite's online backup (a consistent copy even while another connection writes),
    without the salts: a copy outlives the day, and with a day's salt its visitor ids could
    be re-identified by brute force (every IPv4 address times common user agents). The
    copy is stripped in memory and then written out whole, so no salt reaches dest_file's
    disk; an instance started on it makes new salts (a visitor seen today before the backup
    counts once more today after a restore)."""
    memory = sqlite3.connect(":memory:")
    try:
        src = sqlite3.connect(source)
        try:
            src.backup(memory)
        finally:
            src.close()
        memory.execute("PRAGMA secure_delete=ON")
        memory.execute("DELETE FROM salts")
        memory.commit()
        # VACUUM INTO writes live rows only (no free page keeps an old one), header included.
        memory.execute("VACUUM INTO ?", (str(dest_file),))
    finally:
        memory.close()


def _copy_secret(source_dir: Path, dest: Path) -> None:
    for name in (SECRET_FILE, TOTP_KEY_FILE):
        if (source_dir / name).exists():
            shutil.copy2(source_dir / name, dest / name)
            (dest / name).chmod(0o600)


def _write_manifest(dest: Path, counts: dict[str, int]) -> dict[str, Any]:
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "events_schema": latest_version("events"),
        "meta_schema": latest_version("meta"),
        "rows": counts,
    }
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def backup_store(
    store: Store,
    data_dir: Path,
    dest: Path,
    progress: Progress = _quiet,
    *,
    root: Path | None = None,
) -> dict[str, Any]:
    """Backup through an open store (the running server's, which goes on writing); with
    root, only into a new folder inside root (see check_target). A ClickHouse store's
    backup is the same layout: its events become events.duckdb."""
    dest = check_target(dest, data_dir, root)
    check_destination(dest)
    try:
        if root is not None:  # created private; an existing root is the operator's to set
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_dir(dest)
    except OSError as exc:
        raise BackupError(f"{dest}: cannot create the backup folder ({exc})") from exc
    try:
        if store.engine == "duckdb":  # (a class test would miss the server's lent store)
            # A cursor of its own: the copy reads one snapshot (its transaction's), so
            # commits that land meanwhile are left out whole and ingestion never waits.
            with cast(EventStore, store).reading() as cur:
                counts = copy_events(cur, dest / EVENTS_FILE, progress)
        else:
            # ClickHouse: the same events.duckdb, copied from it a site-month at a time
            # (`avocet restore` takes it; `avocet migrate-storage` puts it back).
            from app.storage.clickhouse.migrate import copy_to_duckdb
            from app.storage.clickhouse.store import ClickHouseEventStore

            counts = copy_to_duckdb(cast(ClickHouseEventStore, store), dest / EVENTS_FILE, progress)
        progress("copying meta.sqlite3...")
        copy_meta(data_dir / META_FILE, dest / META_FILE)
        _copy_secret(data_dir, dest)
        manifest = _write_manifest(dest, counts)
        tighten(dest)
    except BaseException:
        _remove_data_files(dest)
        raise
    return {"dest": str(dest), **manifest}


def backup_dir(data_dir: Path, dest: Path, progress: Progress = _quiet) -> dict[str, Any]:
    """Backup of a data dir no server holds (StoreLocked when one does)."""
    if not (data_dir / META_FILE).exists() and not (data_dir / EVENTS_FILE).exists():
        raise BackupError(f"{data_dir} holds no Avocet data")
    store = EventStore(data_dir / EVENTS_FILE)
    try:
        return backup_store(store, data_dir, dest, progress)
    finally:
        store.close()


def _remove_data_files(folder: Path) -> None:
    for name in DATA_FILES:
        (folder / name).unlink(missing_ok=True)


def restore_dir(
    source: Path, data_dir: Path, *, force: bool = False, progress: Progress = _quiet
) -> dict[str, Any]:
    """Copy a backup (or any stopped data dir) into data_dir."""
    source = source.resolve()
    data_dir = data_dir.resolve()
    if source == data_dir:
        raise BackupError("the backup and the data dir are the same directory")
    if not (source / EVENTS_FILE).exists() or not (source / META_FILE).exists():
        raise BackupError(f"{source} is not a backup: it lacks {EVENTS_FILE} or {META_FILE}")
    if (data_dir / EVENTS_FILE).exists():
        try:
            duckdb.connect(str(data_dir / EVENTS_FILE)).close()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise BackupError(
                    "the running server holds the data dir: stop it before restoring"
                ) from exc
            if not force:
                raise
    check_destination(data_dir, force=force)
    # Build the restored files beside the data dir, then move them in: a failure half-way
    # leaves the data dir as it was. The backup itself is only read.
    staging = data_dir.parent / f".{data_dir.name}.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    private_dir(staging)
    try:
        progress("copying events.duckdb...")
        for name in (EVENTS_FILE, f"{EVENTS_FILE}.wal"):
            if (source / name).exists():
                shutil.copyfile(source / name, staging / name)
        store = EventStore(staging / EVENTS_FILE)  # upgrades an older backup's schema
        try:
            counts = row_counts(store)
            store.checkpoint()
        finally:
            store.close()
        progress("copying meta.sqlite3...")
        copy_meta(source / META_FILE, staging / META_FILE)
        MetaStore(staging / META_FILE).close()  # upgrades an older backup's schema
        _copy_secret(source, staging)
        tighten(staging)
        private_dir(data_dir)
        _remove_data_files(data_dir)
        for item in staging.iterdir():
            item.replace(data_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"source": str(source), "data_dir": str(data_dir), "rows": counts}


def _check_events(
    con: duckdb.DuckDBPyConnection, events: dict[str, Any], problems: list[str]
) -> None:
    database = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    events["schema"] = int(row[0]) if row and row[0] is not None else 0
    rows: dict[str, int | str] = {}
    for table in _tables(con, database):
        try:
            found = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            rows[table] = int(found[0]) if found else 0
        except duckdb.Error as exc:
            rows[table] = f"error: {exc}"
            problems.append(f"{EVENTS_FILE} table {table}: {exc}")
    events["rows"] = rows


def _file_usage(con: duckdb.DuckDBPyConnection, path: Path, events: dict[str, Any]) -> None:
    """The events file's size against its used blocks (freed blocks DuckDB keeps), and what
    waits beside it (WAL, ingest journal)."""
    [(block_size, used, free)] = con.execute(
        "SELECT block_size, used_blocks, free_blocks FROM pragma_database_size()"
    ).fetchall()

    def size(name: str) -> int:
        try:
            return path.with_name(name).stat().st_size
        except OSError:
            return 0

    on_disk = path.stat().st_size
    used_bytes = int(block_size) * int(used)
    events["file"] = {
        "bytes": on_disk,
        "used_bytes": used_bytes,
        "free_bytes": int(block_size) * int(free),
        "ratio": round(on_disk / used_bytes, 3) if used_bytes else None,
        "wal_bytes": size(path.name + ".wal"),
        "journal_bytes": size(path.name + ".journal"),
    }


def doctor(
    data_dir: Path, live: EventStore | None = None, clickhouse: ClickHouseEventStore | None = None
) -> dict[str, Any]:
    """Health of a data dir: schema versions, SQLite integrity, every DuckDB table readable
    (through `live`, the running server's store, when the server holds the file); with
    `clickhouse`, the events are that store's (ClickHouseEventStore.health) instead."""
    problems: list[str] = []
    report: dict[str, Any] = {"data_dir": str(data_dir.resolve())}
    meta_path = data_dir / META_FILE
    meta: dict[str, Any] = {"expected_schema": latest_version("meta")}
    if not meta_path.exists():
        problems.append(f"{META_FILE} is missing")
    else:
        con = sqlite3.connect(f"file:{meta_path.resolve()}?mode=ro", uri=True)
        try:
            meta["schema"] = int(con.execute("PRAGMA user_version").fetchone()[0])
            check = [str(r[0]) for r in con.execute("PRAGMA integrity_check").fetchall()]
            meta["integrity"] = "ok" if check == ["ok"] else check
            if check != ["ok"]:
                problems.append(f"{META_FILE} integrity_check: {'; '.join(check[:5])}")
            tables = [
                str(r[0])
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            meta["rows"] = {
                t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables
            }
        finally:
            con.close()
        if meta["schema"] != meta["expected_schema"]:
            problems.append(
                f"{META_FILE} schema is version {meta['schema']},"
                f" this version of Avocet expects {meta['expected_schema']}"
            )
    report["meta"] = meta
    if clickhouse is not None:
        report["events"] = clickhouse.health()
        problems += [f"ClickHouse {p}" for p in report["events"].pop("problems")]
        report["problems"] = problems
        report["healthy"] = not problems
        return report
    events_path = data_dir / EVENTS_FILE
    events: dict[str, Any] = {"expected_schema": latest_version("events")}
    if not events_path.exists():
        problems.append(f"{EVENTS_FILE} is missing")
    else:
        if live is not None:  # the running server's store (the CLI asked it)
            with live.reading() as cur:
                _check_events(cur, events, problems)
                _file_usage(cur, events_path, events)
        else:
            try:
                dcon = duckdb.connect(str(events_path), read_only=True)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    raise StoreLocked(
                        f"{events_path} is in use by another process (is `avocet serve`"
                        " running?): stop it to run the doctor"
                    ) from exc
                raise
            try:
                _check_events(dcon, events, problems)
                _file_usage(dcon, events_path, events)
            finally:
                dcon.close()
        if events["schema"] != events["expected_schema"]:
            problems.append(
                f"{EVENTS_FILE} schema is version {events['schema']},"
                f" this version of Avocet expects {events['expected_schema']}"
            )
    report["events"] = events
    report["problems"] = problems
    report["healthy"] = not problems
    return report


@contextmanager
def _csv_writer(out: Path | zipfile.ZipFile, name: str) -> Iterator[Any]:
    """A csv.writer for a file in a folder, or for a member of a zip archive."""
    if isinstance(out, zipfile.ZipFile):
        with (
            out.open(name, "w", force_zip64=True) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as f,
        ):
            yield csv.writer(f)
    else:
        with (out / name).open("w", newline="", encoding="utf-8") as f:
            yield csv.writer(f)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict):  # no props, empty or NULL, is an empty cell on either store
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def export_csv(
    store: Store,
    site_id: str,
    out: Path,
    first: date | None,
    last: date | None,
    progress: Callable[[str, int], None] | None = None,
    *,
    as_zip: bool = False,
) -> dict[str, Any]:
    """events.csv (no visitor/session/user ids) and daily_stats.csv of one site and range,
    in the folder `out`, or with as_zip in one zip archive at `out` (written to a temporary
    name first, so a failed export never leaves a truncated archive behind)."""
    if as_zip:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.touch(mode=0o600)
        partial.chmod(0o600)  # it holds a site's every event: owner-only like a backup
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                written = _export(store, site_id, archive, first, last, progress)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return {t: {**info, "file": f"{out}!{info['file']}"} for t, info in written.items()}
    private_dir(out)
    written = _export(store, site_id, out, first, last, progress)
    tighten(out)
    return {t: {**info, "file": str(out / info["file"])} for t, info in written.items()}


def _export(
    store: Store,
    site_id: str,
    out: Path | zipfile.ZipFile,
    first: date | None,
    last: date | None,
    progress: Callable[[str, int], None] | None,
) -> dict[str, Any]:
    written: dict[str, Any] = {}
    for table, columns in (("events", EXPORT_COLUMNS), ("daily_stats", ROLLUP_COLUMNS)):
        name = f"{table}.csv"
        n = 0
        with _csv_writer(out, name) as writer:
            writer.writerow(columns)
            for batch in store.export_batches(table, columns, site_id, first, last):
                writer.writerows([_cell(v) for v in row] for row in batch)
                n += len(batch)
                if progress:
                    progress(table, n)
        written[table] = {"file": name, "rows": n}
    return written
