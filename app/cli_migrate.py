"""`avocet migrate-storage --to clickhouse`: copy a DuckDB data dir's events, rollups and
counters into ClickHouse (issue #24), resumable (app/storage/clickhouse/migrate.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli_imports import progress_bar
from app.cli_json import print_json
from app.config import Settings
from app.errors import Conflict, InvalidRequest
from app.storage.events import EventStore, StoreLocked


def cmd_migrate_storage(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(settings.data_dir) / "events.duckdb"
    if not path.is_file():
        raise InvalidRequest(f"{path} does not exist: nothing to copy")
    try:
        from app.storage.clickhouse.migrate import MigrationConflict, migrate
        from app.storage.clickhouse.store import ClickHouseEventStore

        target = ClickHouseEventStore(args.dsn or settings.clickhouse_dsn)
    except ImportError as exc:
        raise InvalidRequest(
            "migrate-storage needs the clickhouse extra: pip install 'avocet[clickhouse]'"
            " (or uv sync --extra clickhouse)"
        ) from exc
    try:
        try:
            source = EventStore(path, settings.duckdb)
        except StoreLocked as exc:
            raise Conflict(
                f"{path} is in use (is `avocet serve` running?): stop the server first, the"
                " copy reads the events file whole"
            ) from exc
        try:
            with progress_bar(args, "copying events") as update:
                done = migrate(source, target, update)
        except MigrationConflict as exc:
            raise Conflict(str(exc)) from exc
        finally:
            source.close()
    finally:
        target.close()
    summary: dict[str, Any] = done._asdict()
    if args.json:
        print_json(summary)
    else:
        print(
            f"{done.events} events in {done.chunks} site-months ({done.copied} copied now, the"
            f" rest by an earlier run), {done.rollup_rows} rollup rows of {done.rolled_days}"
            f' days, {done.counters} counter rows. Set storage = "clickhouse" to serve from'
            " it (events.duckdb is left as it was)."
        )
    return 0


def register(sub: Any) -> None:
    migrate = sub.add_parser(
        "migrate-storage",
        help="copy the events, rollups and counters into ClickHouse (resumable; server stopped)",
    )
    migrate.add_argument("--to", choices=["clickhouse"], required=True)
    migrate.add_argument("--dsn", help="chdb://PATH or http(s)://...; default: [clickhouse] dsn")
    migrate.add_argument("--json", action="store_true", help="print one JSON object")
    migrate.add_argument(
        "--progress", action="store_true", help="report progress even when not on a terminal"
    )
    migrate.set_defaults(func=cmd_migrate_storage)
