"""`avocet rollup`, `avocet prune` and `avocet compact`: the lifecycle jobs, run by hand on
the data dir."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any, cast

from app.cli_json import print_json
from app.cli_served import duckdb_only, open_events
from app.config import Settings
from app.errors import AppError
from app.jobs.lifecycle import Report, align_zones, compact, prune_sites, rollup_sites
from app.storage.events import StoreLocked
from app.storage.meta import MetaStore, Site
from app.storage.retention import retention_of
from app.storage.store import Store


class ServerRunning(AppError):
    status = 409
    code = "conflict"


def _open(settings: Settings) -> tuple[MetaStore, Store]:
    from app.services import open_meta  # destroys expired salts, as every command does

    data = Path(settings.data_dir)
    meta = open_meta(settings)
    try:
        return meta, open_events(settings)  # the server's own when it runs the command
    except StoreLocked as exc:
        meta.close()
        raise ServerRunning(
            f"another process holds the events file in {data} and does not answer on its"
            " avocet.sock (a server of another user, or an older version): run the"
            " command as the server's user, or stop that server"
        ) from exc


def _print(report: Report, sites: list[Site], what: str, as_json: bool) -> int:
    by_id = {s.id: s for s in sites}
    if as_json:
        out: dict[str, Any] = {"done": report.done, "failed": report.failed}
        print_json(out)
    else:
        for site_id, n in report.done.items():
            print(f"{by_id[site_id].domain}: {n} {what}")
        for site_id, error in report.failed.items():
            print(f"{by_id[site_id].domain}: FAILED: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def _aligned_sites(meta: MetaStore, store: Store) -> list[Site]:
    """The sites, after re-dating the events of any whose timezone changed."""
    align_zones(store, meta, meta.sites())
    return meta.sites()


def cmd_rollup(settings: Settings, args: argparse.Namespace) -> int:
    meta, store = _open(settings)
    try:
        sites = _aligned_sites(meta, store)
        tty = (sys.stderr.isatty() or args.progress) and not args.json

        def progress(site: Site, days: int) -> None:
            if tty:
                print(f"rolling up {days} days of {site.domain}...", file=sys.stderr, flush=True)

        report = rollup_sites(store, sites, progress=progress)
        return _print(report, sites, "days rolled up", args.json)
    finally:
        store.close()
        meta.close()


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    meta, store = _open(settings)
    try:
        sites = meta.sites() if args.dry_run else _aligned_sites(meta, store)
        if not args.dry_run:
            rollup_sites(store, sites)  # never prune a day before its rollup exists
        report = prune_sites(
            store, sites, lambda site: retention_of(site, settings), dry_run=args.dry_run
        )
        verb = "raw events would be deleted" if args.dry_run else "raw events deleted"
        return _print(report, sites, verb, args.json)
    finally:
        store.close()
        meta.close()


def cmd_compact(settings: Settings, args: argparse.Namespace) -> int:
    meta, store = _open(settings)
    try:
        tty = (sys.stderr.isatty() or args.progress) and not args.json
        if store.engine == "clickhouse":
            return _compact_clickhouse(store, args.json, tty)

        def progress(day: date, i: int, n: int) -> None:
            if tty:
                print(f"compacting {day} ({i}/{n})", file=sys.stderr, flush=True)

        report = compact(duckdb_only(store, "compact"), progress=progress)
        if args.json:
            print_json(
                {"done": report.done, "failed": report.failed, "rewritten": report.rewritten}
            )
        else:
            total = sum(report.done.values())
            print(f"{len(report.done)} days compacted ({total} events)")
            if report.rewritten is not None:
                print(f"events file rewritten to its used size: {report.rewritten:,} bytes")
            for day, error in report.failed.items():
                print(f"{day}: FAILED: {error}", file=sys.stderr)
        return 1 if report.failed else 0
    finally:
        store.close()
        meta.close()


def _compact_clickhouse(store: Store, as_json: bool, tty: bool) -> int:
    """Each finished month's parts merged into one (ClickHouseEventStore.compact)."""
    from app.storage.clickhouse.store import ClickHouseEventStore

    def progress(name: str, i: int, n: int) -> None:
        if tty:
            print(f"merging {name} ({i}/{n})", file=sys.stderr, flush=True)

    done = cast(ClickHouseEventStore, store).compact(progress=progress)
    size = store.rewrite()  # masked rows out of the newest parts too; bytes on disk
    if as_json:
        print_json({"done": done, "failed": {}, "rewritten": size})
    else:
        print(f"{len(done)} partitions merged ({sum(done.values())} parts into {len(done)})")
        print(f"tables on disk: {size:,} bytes")
    return 0


def register(sub: Any) -> None:
    rollup = sub.add_parser("rollup", help="build daily rollups for finished days")
    rollup.add_argument("--json", action="store_true", help="print one JSON object")
    rollup.add_argument(
        "--progress", action="store_true", help="report progress even when not on a terminal"
    )
    rollup.set_defaults(func=cmd_rollup)
    prune = sub.add_parser(
        "prune",
        help="delete raw events past each site's raw retention once rolled up, and"
        " everything past its total retention",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")
    prune.add_argument("--json", action="store_true", help="print one JSON object")
    prune.set_defaults(func=cmd_prune)
    compact_cmd = sub.add_parser(
        "compact", help="rewrite finished days' raw events in site/session order (smaller)"
    )
    compact_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    compact_cmd.add_argument(
        "--progress", action="store_true", help="report progress even when not on a terminal"
    )
    compact_cmd.set_defaults(func=cmd_compact)
