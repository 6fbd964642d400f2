"""`avocet backup`, `restore`, `doctor` and `export`: copies and checks of the data dir."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

from app.cli_json import print_json
from app.cli_served import cli_path, duckdb_only, open_events, served
from app.config import Settings
from app.errors import AppError, InvalidRequest
from app.storage.events import StoreLocked


class ServerError(AppError):
    status = 502
    code = "server_error"


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines on stderr when it is a terminal (or --progress), never under --json."""
    show = (sys.stderr.isatty() or getattr(args, "progress", False)) and not args.json

    def say(message: str) -> None:
        if show:
            print(message, file=sys.stderr, flush=True)

    return say


def _server_url(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.url or settings.local_url).rstrip("/")


def _backup_via_server(settings: Settings, args: argparse.Namespace, dest: Path) -> dict[str, Any]:
    import httpx

    token = args.token or os.environ.get("AVOCET_TOKEN", "")
    if not token:
        raise InvalidRequest(
            "the running server holds the events file, so the backup is taken through it:"
            " pass an instance admin's API key (all sites, sites:write) or JWT with --token"
            " or AVOCET_TOKEN"
        )
    url = f"{_server_url(settings, args)}/api/v1/admin/backup"
    try:
        response = httpx.post(
            url,
            json={"dest": str(dest)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=None,
        )
    except httpx.TransportError as exc:
        raise ServerError(
            f"the events file is locked but no server answers at {url} ({exc}); use --url"
        ) from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("error", {})
            message = detail.get("message") if isinstance(detail, dict) else str(detail)
        except ValueError:
            message = None
        status = response.status_code
        raise ServerError(f"the server refused the backup ({status}): {message or response.text}")
    result: dict[str, Any] = response.json()
    return result


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from app.backup import backup_dir, backup_store

    dest = cli_path(args.dest).resolve()
    say = _progress(args)
    live = served()
    try:
        if live is not None:  # the running server runs this for the CLI
            result = backup_store(live.events, Path(settings.data_dir), dest, say)
            result["via"] = "server"
        elif settings.storage == "clickhouse":
            store = open_events(settings)
            try:
                result = backup_store(store, Path(settings.data_dir), dest, say)
            finally:
                store.close()
            result["via"] = "files"
        else:
            result = backup_dir(Path(settings.data_dir), dest, say)
            result["via"] = "files"
    except StoreLocked:
        say(f"the server holds the events file; asking it for the backup into {dest}...")
        result = _backup_via_server(settings, args, dest)
        result["via"] = "server"
    if args.json:
        print_json(result)
    else:
        rows = result.get("rows", {})
        print(f"backup written to {result['dest']} (through the {result['via']})")
        for table, n in rows.items():
            print(f"  {table}: {n} rows")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from app.backup import restore_dir

    result = restore_dir(
        Path(args.source), Path(settings.data_dir), force=args.force, progress=_progress(args)
    )
    if args.json:
        print_json(result)
    else:
        print(f"restored {result['source']} into {result['data_dir']}")
        for table, n in result["rows"].items():
            print(f"  {table}: {n} rows")
    return 0


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from app.backup import doctor

    live = served()
    try:
        if settings.storage == "clickhouse":
            report = _doctor_clickhouse(settings, live)
        else:
            report = doctor(
                Path(settings.data_dir), duckdb_only(live.events, "doctor") if live else None
            )
    except StoreLocked as exc:
        raise _locked(str(exc)) from exc
    if args.json:
        print_json(report)
    else:
        print(f"data dir {report['data_dir']}")
        on_clickhouse = report["events"].get("engine") == "clickhouse"
        for part in ("meta",) if on_clickhouse else ("meta", "events"):
            info = report[part]
            print(f"{part}: schema {info.get('schema')} (expected {info['expected_schema']})")
            for table, n in info.get("rows", {}).items():
                print(f"  {table}: {n}")
            file = info.get("file")
            if file:
                mb = 1 << 20
                ratio = f" ({file['ratio']}x)" if file["ratio"] else ""
                print(
                    f"  file: {file['bytes'] / mb:.1f} MB on disk,"
                    f" {file['used_bytes'] / mb:.1f} MB in use{ratio};"
                    f" WAL {file['wal_bytes'] / mb:.1f} MB,"
                    f" journal {file['journal_bytes'] / mb:.1f} MB"
                )
        if on_clickhouse:
            _print_clickhouse(report["events"])
        if report["healthy"]:
            print("healthy")
        for problem in report["problems"]:
            print(f"PROBLEM: {problem}", file=sys.stderr)
    return 0 if report["healthy"] else 1


def _doctor_clickhouse(settings: Settings, live: Any) -> dict[str, Any]:
    """The doctor's report with the events in ClickHouse: the running server's store when
    it runs the command, else ClickHouse opened here."""
    from app.backup import doctor
    from app.storage.clickhouse.store import ClickHouseEventStore

    if live is not None:
        return doctor(Path(settings.data_dir), clickhouse=cast(ClickHouseEventStore, live.events))
    store = ClickHouseEventStore.unheld(settings.clickhouse_dsn)
    try:
        return doctor(Path(settings.data_dir), clickhouse=store)
    finally:
        store.close()


def _print_clickhouse(events: dict[str, Any]) -> None:
    mb = 1 << 20
    print(f"events: ClickHouse {events['dsn']}")
    for table, n in events["rows"].items():
        print(f"  {table}: {n} ({events['parts'][table]} parts)")
    print(
        f"  {events['bytes'] / mb:.1f} MB on disk in active parts,"
        f" {events['replaced_bytes'] / mb:.1f} MB in replaced parts not removed yet;"
        f" {events['mutations_pending']} mutations running"
    )
    if events["ttl_days"]:
        print(f"  TTL: days older than {events['ttl_days']} + 2 are dropped by merges")
    replicas = events["replicas"]
    if replicas["tables"]:
        print(
            f"  replicated: {replicas['tables']} tables; at least {replicas['active']} of"
            f" {replicas['total']} replicas active; this one at most {replicas['delay_s']} s"
            " behind"
        )
    for site in events["redates_pending"]:
        print(f"  a re-dating of site {site} was cut short: the next rollup run finishes it")
    for step in events.get("imports_pending", []):
        print(f"  {step} was cut short: the server's next start settles it")


def _locked(message: str) -> AppError:
    from app.cli_data import ServerRunning

    return ServerRunning(message)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: expected YYYY-MM-DD, got {value!r}") from exc


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from app.backup import export_csv
    from app.errors import NotFound
    from app.services import open_meta

    first, last = _day(args.from_day, "--from"), _day(args.to_day, "--to")
    if args.format == "plausible":
        from app.cli_export import export_plausible

        return export_plausible(settings, args, first, last)
    meta = open_meta(settings)
    try:
        sites = {s.id: s for s in meta.sites()}
        by_domain = {s.domain: s for s in sites.values()}
    finally:
        meta.close()
    site = sites.get(args.site) or by_domain.get(args.site)
    if site is None:
        raise NotFound(f"no site with id or domain {args.site!r}")
    try:
        store = open_events(settings)  # the server's own when it runs the command
    except StoreLocked as exc:
        raise _locked(
            "another process holds the events file and does not answer on its avocet.sock"
            " (a server of another user, or an older version): run the command as the"
            " server's user, or export from a backup (avocet backup DIR, then avocet"
            " --data-dir DIR export ...)"
        ) from exc
    say = _progress(args)
    as_zip = args.format == "zip"
    out = cli_path(args.out or f"export-{site.domain}{'.zip' if as_zip else ''}")
    try:
        written = export_csv(
            store,
            site.id,
            out,
            first,
            last,
            lambda table, n: say(f"{table}: {n} rows..."),
            as_zip=as_zip,
        )
    finally:
        store.close()
    if args.json:
        print_json({"site_id": site.id, "files": written})
    else:
        for info in written.values():
            print(f"{info['file']}: {info['rows']} rows")
    return 0


def register(sub: Any) -> None:
    backup = sub.add_parser(
        "backup", help="write a consistent copy of the data dir (works while serving)"
    )
    backup.add_argument("dest", help="an empty or missing directory")
    backup.add_argument(
        "--url", help="the running server's URL (default: from the config's host and port)"
    )
    backup.add_argument(
        "--token", help="instance admin's API key or JWT when the server runs (or AVOCET_TOKEN)"
    )
    backup.add_argument("--json", action="store_true", help="print one JSON object")
    backup.add_argument("--progress", action="store_true", help="progress even off a terminal")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="copy a backup into the (stopped) data dir")
    restore.add_argument("source", help="a directory written by avocet backup")
    restore.add_argument("--force", action="store_true", help="overwrite a non-empty data dir")
    restore.add_argument("--json", action="store_true", help="print one JSON object")
    restore.add_argument("--progress", action="store_true", help="progress even off a terminal")
    restore.set_defaults(func=cmd_restore)

    doctor = sub.add_parser("doctor", help="check the data dir (exit 0 when healthy)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(func=cmd_doctor)

    export = sub.add_parser(
        "export", help="write a site's events and daily stats as CSV (a folder or one zip)"
    )
    export.add_argument("site", help="site id or domain")
    export.add_argument(
        "--format",
        choices=("csv", "zip", "plausible"),
        default="csv",
        help="csv: a folder of CSV files; zip: the same files in one zip archive;"
        " plausible: Plausible's CSV export (a zip of imported_*.csv daily tables; works"
        " while the server runs, through it, with --token)",
    )
    export.add_argument("--from", dest="from_day", help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="to_day", help="last day, YYYY-MM-DD")
    export.add_argument(
        "--out", help="output directory, or file with zip (default: export-DOMAIN[.zip])"
    )
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.add_argument("--progress", action="store_true", help="progress even off a terminal")
    export.add_argument("--url", help="the running server's URL (--format plausible)")
    export.add_argument("--token", help="API key or JWT when the server runs (or AVOCET_TOKEN)")
    export.set_defaults(func=cmd_export)
