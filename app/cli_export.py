"""`avocet export SITE --format plausible`: the site's stats as Plausible's CSV export (a zip
of imported_*.csv tables, app/imports/plausible_export.py).

With the server stopped, the command reads the data dir itself; while the server runs (it
holds the events file) the zip is streamed from GET /api/v1/sites/{id}/export with an API
key or JWT (--token or AVOCET_TOKEN), as `avocet import` does."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from app.cli_json import print_json
from app.cli_served import open_events
from app.config import Settings
from app.errors import AppError, InvalidRequest, NotFound
from app.storage.events import StoreLocked
from app.storage.meta import Site


class ServerError(AppError):
    status = 502
    code = "server_error"


def _site(settings: Settings, ref: str) -> Site:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        for site in meta.sites():
            if ref in (site.id, site.domain):
                return site
    finally:
        meta.close()
    raise NotFound(f"no site with id or domain {ref!r}")


def _write_atomically(out: Path, chunks: Any) -> int:
    """Write the chunks to out via a temporary name (never a truncated archive); bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)  # a site's stats: owner-only, like the other exports
    size = 0
    try:
        with partial.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                size += len(chunk)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return size


def _local(
    settings: Settings, args: argparse.Namespace, site: Site, first: date | None, last: date | None
) -> dict[str, Any] | None:
    from app.imports.plausible_export import archive_name, data_range, stream_zip

    try:
        store = open_events(settings)  # the server's own when it runs the command
    except StoreLocked:
        return None
    tables: dict[str, int] = {}
    try:
        span = data_range(store, site.id)
        if span is None and (first is None or last is None):
            raise InvalidRequest(f"{site.domain} has no data yet: nothing to export")
        assert span is not None or (first is not None and last is not None)
        first = first or span[0]  # type: ignore[index]
        last = last or span[1]  # type: ignore[index]
        if first > last:
            raise InvalidRequest("--from: must not be after --to")
        today = datetime.now(UTC).astimezone(site.zone).date()
        out = Path(args.out or archive_name(site.domain, today))
        size = _write_atomically(
            out, stream_zip(store, site, first, last, lambda t, n: tables.__setitem__(t, n))
        )
    finally:
        store.close()
    return {"site_id": site.id, "file": str(out), "bytes": size, "from": first.isoformat(),
            "to": last.isoformat(), "rows": tables}  # fmt: skip


def _via_server(
    settings: Settings, args: argparse.Namespace, site: Site, first: date | None, last: date | None
) -> dict[str, Any]:
    import httpx

    token = str(args.token or os.environ.get("AVOCET_TOKEN", ""))
    if not token:
        raise InvalidRequest(
            "the running server holds the events file, so the export goes through it: pass"
            " an API key with stats:read for the site (or a JWT) with --token or AVOCET_TOKEN"
        )
    url = f"{str(args.url or settings.local_url).rstrip('/')}/api/v1/sites/{site.id}/export"
    params = {"format": "plausible"}
    if first:
        params["from"] = first.isoformat()
    if last:
        params["to"] = last.isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.stream("GET", url, params=params, headers=headers, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                try:
                    message = response.json()["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = response.text
                raise ServerError(f"the server said {response.status_code}: {message}")
            disposition = response.headers.get("content-disposition", "")
            name = disposition.partition('filename="')[2].partition('"')[0] or "export.zip"
            out = Path(args.out or name)
            size = _write_atomically(out, response.iter_bytes())
    except httpx.TransportError as exc:
        raise ServerError(
            f"the events file is locked but no server answers at {url} ({exc}); use --url"
        ) from exc
    return {"site_id": site.id, "file": str(out), "bytes": size}


def export_plausible(
    settings: Settings, args: argparse.Namespace, first: date | None, last: date | None
) -> int:
    """The `--format plausible` branch of `avocet export`."""
    site = _site(settings, args.site)
    done = _local(settings, args, site, first, last) or _via_server(
        settings, args, site, first, last
    )
    if args.json:
        print_json(done)
    else:
        print(f"{done['file']}: {done['bytes']} bytes", file=sys.stdout)
        for table, n in (done.get("rows") or {}).items():
            print(f"  {table}: {n} rows")
    return 0
