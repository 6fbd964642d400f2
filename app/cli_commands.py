"""The `avocet` command line's commands and their parser (but serving, which app/cli.py
runs): the server's control channel (app/control.py) parses what it is handed with the same
parser, without importing the app it belongs to."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli_json import print_json
from app.config import Settings


def snippet(site_id: str, base_url: str) -> str:
    return f'<script defer data-site="{site_id}" src="{base_url}/script.js"></script>'


def cmd_site_add(settings: Settings, args: argparse.Namespace) -> int:
    from app.cli_accounts import owner_of
    from app.services import open_meta
    from app.storage.accounts import set_role

    meta = open_meta(settings)
    try:
        owner = owner_of(meta, args.owner)
        site = meta.add_site(args.domain, name=args.name, timezone=args.timezone)
        if owner is not None:
            set_role(meta, site.id, owner.id, "owner")
    finally:
        meta.close()
    code = snippet(site.id, settings.base_url)
    if args.json:
        print_json({**site.public(), "owner": owner.email if owner else None, "snippet": code})
    else:
        print(f"site {site.domain} added with id {site.id} (timezone {site.timezone})")
        if owner is not None:
            print(f"owner: {owner.email}")
        else:
            print(
                "no owner yet (no user exists): the first user you create becomes its owner"
                " (avocet user create EMAIL, or the set-up page of the running server)"
            )
        print("Paste this into the <head> of every page:")
        print(f"  {code}")
    return 0


def cmd_site_list(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        sites = meta.sites()
    finally:
        meta.close()
    if args.json:
        print_json([s.public() for s in sites])
    elif not sites:
        print("no sites yet: avocet site add example.com")
    else:
        width = max(len(s.domain) for s in sites)
        for s in sites:
            print(f"{s.id}  {s.domain:<{width}}  {s.timezone}  {s.name}")
    return 0


def cmd_site_rename(settings: Settings, args: argparse.Namespace) -> int:
    """A new domain (and name) for a site, found by id or domain; a name never set by hand
    follows the domain."""
    from app.errors import NotFound
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        found = [s for s in meta.sites() if args.site in (s.id, s.domain)]
        if not found:
            raise NotFound(f"no site with id or domain {args.site!r}")
        site = meta.update_site(found[0].id, domain=args.domain, name=args.name)
    finally:
        meta.close()
    if site is None:
        raise NotFound(f"no site with id or domain {args.site!r}")
    if args.json:
        print_json(site.public())
    else:
        print(f"site {site.id} is now {site.domain} (name: {site.name})")
    return 0


def cmd_site_share(settings: Settings, args: argparse.Namespace) -> int:
    from app.cli_accounts import owner_of
    from app.errors import NotFound
    from app.services import open_meta
    from app.storage.accounts import set_role

    meta = open_meta(settings)
    try:
        user = owner_of(meta, args.email)
        if user is None or not any(s.id == args.site_id for s in meta.sites()):
            raise NotFound(f"no site with id {args.site_id!r}")
        set_role(meta, args.site_id, user.id, args.role)
    finally:
        meta.close()
    if args.json:
        print_json({"site_id": args.site_id, "email": user.email, "role": args.role})
    else:
        print(f"{user.email} is now {args.role} of {args.site_id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avocet",
        description="Avocet: privacy-first web analytics in one process.",
        epilog="Settings come from config.toml (or --config) and AVOCET_* variables.",
    )
    parser.add_argument("--config", type=Path, help="TOML config file (default: ./config.toml)")
    parser.add_argument("--data-dir", help="data directory (default: data)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.set_defaults(func=None)  # app/cli.py serves: the app is not imported from here
    for name, what in (
        ("collector", "run a collector: the tracking routes of a cluster (storage = clickhouse)"),
        ("sessionizer", "run a sessionizer: commits the visits it owns (storage = clickhouse)"),
    ):
        node = sub.add_parser(name, help=what)
        node.add_argument("--host", help="listen address (default 127.0.0.1)")
        node.add_argument("--port", type=int, help="listen port (default 8000)")
        node.set_defaults(func=None)

    site = sub.add_parser(
        "site", help="add, list, rename, share, reset or delete sites"
    ).add_subparsers(dest="site_command", required=True, metavar="ACTION")
    add = site.add_parser("add", help="add a site and print its tracking snippet")
    add.add_argument("domain", help="the site's primary hostname, e.g. example.com")
    add.add_argument("--timezone", default="UTC", help="IANA zone for days and reports")
    add.add_argument("--name", help="display name (default: the domain)")
    add.add_argument("--owner", help="owner's email (default: the first admin)")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(func=cmd_site_add)
    ls = site.add_parser("list", help="list sites")
    ls.add_argument("--json", action="store_true", help="print one JSON array")
    ls.set_defaults(func=cmd_site_list)
    rename = site.add_parser("rename", help="change a site's domain (and name)")
    rename.add_argument("site", help="site id or current domain")
    rename.add_argument("domain", help="the new primary hostname")
    rename.add_argument("--name", help="a new display name (default: kept, or the domain)")
    rename.add_argument("--json", action="store_true", help="print one JSON object")
    rename.set_defaults(func=cmd_site_rename)
    share = site.add_parser("share", help="give a user a role on a site")
    share.add_argument("site_id")
    share.add_argument("email")
    share.add_argument("--role", choices=("owner", "admin", "viewer"), default="viewer")
    share.add_argument("--json", action="store_true", help="print one JSON object")
    share.set_defaults(func=cmd_site_share)
    from app.cli_deletion import register as register_deletion

    register_deletion(site)

    from app.cli_accounts import register
    from app.cli_backup import register as register_backup
    from app.cli_data import register as register_data
    from app.cli_imports import register as register_imports
    from app.cli_migrate import register as register_migrate

    register(sub)
    register_data(sub)
    register_backup(sub)
    register_imports(sub)
    register_migrate(sub)
    return parser
