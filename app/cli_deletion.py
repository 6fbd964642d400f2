"""`avocet site delete SITE` and `avocet site reset SITE [--from D --to D]`: the same
background jobs as DELETE /api/v1/sites/{id} and POST .../reset (app/jobs/privacy.py).

Without --yes a command only says exactly what would be deleted. With it, the request is
queued and followed to its end, one line per step done. While the server runs, the
command runs in it (app/cli_served.py) and hands the request to the server's queue of
deletions; otherwise it carries the job out itself, on the files."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import date
from typing import Any

from app.cli_json import print_json
from app.cli_served import open_events, served
from app.config import Settings
from app.errors import InvalidRequest, NotFound
from app.storage import privacy
from app.storage.meta import MetaStore, Site
from app.storage.purge import events_inventory, site_inventory
from app.storage.store import Store

POLL_SECONDS = 0.2
REQUESTED_BY = "cli"
STEPS = {"site": ["events", "meta", "rewrite"], "reset": ["events", "rewrite"]}
STEP_TEXT = {
    "events": "events, rollups and counters deleted",
    "meta": "keys, goals, funnels, share links, members, report lists and salts deleted",
    "rewrite": "events file rewritten (no deleted byte left on disk)",
}


def _site(meta: MetaStore, wanted: str) -> Site:
    found = [s for s in meta.sites() if wanted in (s.id, s.domain)]
    if not found:
        raise NotFound(f"no site with id or domain {wanted!r}")
    return found[0]


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{flag}: use a date like 2026-01-31") from exc


def _listing(what: dict[str, int]) -> str:
    return "".join(f"  {thing.replace('_', ' ')}: {n:,}\n" for thing, n in what.items())


def _run_here(store: Store, meta: MetaStore, request_id: str) -> threading.Thread:
    """No server: this process carries out the request (in a thread, so the main one can
    show its steps)."""
    from app.ingest.sites import SiteDirectory
    from app.jobs.privacy import run_request

    sites = SiteDirectory(meta)
    job = threading.Thread(target=run_request, args=(store, meta, sites, request_id))
    job.start()
    return job


def _follow(store: Store, meta: MetaStore, request_id: str) -> privacy.PrivacyRequest:
    """Start the request (the server's jobs, or here) and print each step as it is done."""
    found = served()
    job = None
    if found is not None and found.submit is not None:
        found.submit(request_id)
    else:
        job = _run_here(store, meta, request_id)
    print(f"deletion {request_id} queued", file=sys.stderr)
    shown = 0
    while True:
        request = privacy.get_request(meta, request_id)
        assert request is not None
        # Steps pass quickly: every step up to the one recorded is done (all, once done).
        steps = STEPS[request.kind]
        reached = steps.index(request.step) + 1 if request.step in steps else 0
        if request.status == "done":
            reached = len(steps)
        for step in steps[shown:reached]:
            print(f"  {STEP_TEXT[step]}", file=sys.stderr)
        shown = max(shown, reached)
        if request.status in ("done", "failed"):
            if job is not None:
                job.join()
            return request
        time.sleep(POLL_SECONDS)


def _finish(request: privacy.PrivacyRequest, args: argparse.Namespace, done: str) -> int:
    if args.json:
        print_json(request.public())
    elif request.status == "done":
        print(f"{done} (request {request.id}):")
        print(_listing({"events": request.events_deleted, **request.deleted}), end="")
    if request.status != "done":
        print(f"avocet: deletion {request.id} failed: {request.error}", file=sys.stderr)
        return 1
    return 0


def _refused(args: argparse.Namespace, what: dict[str, Any], text: str) -> int:
    """Without --yes: what would go, and nothing done."""
    if args.json:
        print_json({"deleted": False, "would_delete": what})
    else:
        print(text + _listing(what), end="")
    print("nothing deleted: run it again with --yes to delete all of this", file=sys.stderr)
    return 1


def cmd_site_delete(settings: Settings, args: argparse.Namespace) -> int:
    """Delete a site and everything it owns, as the API's background job does."""
    from app.services import open_meta

    meta = open_meta(settings)
    store = open_events(settings)
    try:
        site = _site(meta, args.site)
        what = {**events_inventory(store, site.id), **site_inventory(meta, site.id)}
        if not args.yes:
            text = f"deleting site {site.domain} ({site.id}) deletes the site and:\n"
            return _refused(args, what, text)
        request = privacy.create_request(meta, site.id, None, REQUESTED_BY, kind="site")
        done = _follow(store, meta, request.id)
        return _finish(done, args, f"site {site.domain} ({site.id}) deleted")
    finally:
        store.close()
        meta.close()


def cmd_site_reset(settings: Settings, args: argparse.Namespace) -> int:
    """Delete a site's stats of a range of its days, or all of them; the site stays."""
    from app.services import open_meta

    first, last = _day(args.date_from, "--from"), _day(args.date_to, "--to")
    if first and last and first > last:
        raise InvalidRequest("--from: must not be after --to")
    meta = open_meta(settings)
    store = open_events(settings)
    try:
        site = _site(meta, args.site)
        span = f"from {first or 'its first day'} to {last or 'today'}" if first or last else "all"
        what = events_inventory(store, site.id, first, last)
        if not args.yes:
            text = f"resetting {site.domain} ({site.id}) deletes {span} of its stats:\n"
            return _refused(args, what, text)
        request = privacy.create_request(
            meta,
            site.id,
            None,
            REQUESTED_BY,
            kind="reset",
            first_day=first.isoformat() if first else None,
            last_day=last.isoformat() if last else None,
        )
        done = _follow(store, meta, request.id)
        return _finish(done, args, f"{site.domain} ({site.id}): {span} of its stats deleted")
    finally:
        store.close()
        meta.close()


def register(site: Any) -> None:
    """The `site delete` and `site reset` subcommands (site: the `site` subparsers)."""
    delete = site.add_parser("delete", help="delete a site and all its data (a job)")
    delete.add_argument("site", help="site id or domain")
    delete.add_argument("--yes", action="store_true", help="delete (else: only say what goes)")
    delete.add_argument("--json", action="store_true", help="print one JSON object")
    delete.set_defaults(func=cmd_site_delete)
    reset = site.add_parser("reset", help="delete a site's stats, all or a range of days")
    reset.add_argument("site", help="site id or domain")
    reset.add_argument("--from", dest="date_from", help="first site-local day, YYYY-MM-DD")
    reset.add_argument("--to", dest="date_to", help="last site-local day, YYYY-MM-DD")
    reset.add_argument("--yes", action="store_true", help="delete (else: only say what goes)")
    reset.add_argument("--json", action="store_true", help="print one JSON object")
    reset.set_defaults(func=cmd_site_reset)
