"""`avocet user ...` and `avocet key ...`: accounts and API keys on the data dir."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from app.auth.keys import create_api_key, parse_expiry, parse_scopes
from app.auth.passwords import Passwords, check_password_rules
from app.cli_json import print_json
from app.config import Settings
from app.errors import InvalidRequest, NotFound
from app.storage.accounts import (
    User,
    create_user,
    delete_all_sessions,
    delete_user,
    first_admin,
    replace_recovery_codes,
    role_of,
    set_password_hash,
    set_totp_secret,
    site_ids_of,
    totp_secret_of,
    user_by_email,
    users,
)
from app.storage.keys import all_keys, revoke_key
from app.storage.meta import MetaStore


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise InvalidRequest("the passwords differ")
    return first


def owner_of(meta: MetaStore, email: str | None) -> User | None:
    """The user named by --owner, or the first admin when omitted (None if no users yet)."""
    if email is None:
        return first_admin(meta)
    user = user_by_email(meta, email)
    if user is None:
        raise NotFound(f"no user with email {email!r}: avocet user create {email}")
    return user


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    password = check_password_rules(_read_password(args.password_stdin))
    password_hash = Passwords(settings.auth).hash_sync(password)
    meta = open_meta(settings)
    try:
        user = create_user(meta, args.email, password_hash, admin=args.admin)
        # A new user owns sites only when they were the first: those had no owner.
        owned = [s for s in meta.sites() if s.id in site_ids_of(meta, user.id, ("owner",))]
    finally:
        meta.close()
    if args.json:
        print_json({**user.public(), "owner_of": [s.id for s in owned]})
    else:
        role = "instance admin" if user.is_admin else "user"
        print(f"{role} {user.email} created with id {user.id}")
        for site in owned:
            print(f"owner of {site.domain} ({site.id}), which had no owner")
    return 0


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        found = [(u, totp_secret_of(meta, u.id) is not None) for u in users(meta)]
    finally:
        meta.close()
    if args.json:
        print_json([{**u.public(), "two_factor": on} for u, on in found])
    elif not found:
        print("no users yet: avocet user create EMAIL --admin")
    else:
        width = max(len(u.email) for u, _ in found)
        for u, on in found:
            flags = ", ".join(f for f, yes in (("admin", u.is_admin), ("2fa", on)) if yes)
            print(f"{u.id}  {u.email:<{width}}  {flags}")
    return 0


def cmd_user_reset_password(settings: Settings, args: argparse.Namespace) -> int:
    """A new password for a user (read like `user create`); their sessions and JWTs end."""
    from app.services import open_meta

    password = check_password_rules(_read_password(args.password_stdin))
    password_hash = Passwords(settings.auth).hash_sync(password)
    meta = open_meta(settings)
    try:
        user = _user_named(meta, args.email)
        set_password_hash(meta, user.id, password_hash)
        delete_all_sessions(meta, user.id)
    finally:
        meta.close()
    if args.json:
        print_json({"email": user.email, "password_changed": True})
    else:
        print(f"password of {user.email} changed; they are signed out everywhere")
    return 0


def cmd_user_delete(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        user = _user_named(meta, args.email)
        delete_user(meta, user.id)
    finally:
        meta.close()
    if args.json:
        print_json({"email": user.email, "deleted": True})
    else:
        print(f"user {user.email} deleted (their roles, sessions and API keys with them)")
    return 0


def _user_named(meta: MetaStore, email: str) -> User:
    user = user_by_email(meta, email)
    if user is None:
        raise NotFound(f"no user with email {email!r}")
    return user


def cmd_user_reset_2fa(settings: Settings, args: argparse.Namespace) -> int:
    """Turn a user's two-factor sign-in off (lost phone, or a lost totp.key)."""
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        user = _user_named(meta, args.email)
        set_totp_secret(meta, user.id, None)
        replace_recovery_codes(meta, user.id, [])
    finally:
        meta.close()
    if args.json:
        print_json({"email": user.email, "two_factor": False})
    else:
        print(f"two-factor sign-in is off for {user.email}; their API JWTs were revoked")
    return 0


def cmd_key_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    scopes = parse_scopes([args.scopes])
    expires = parse_expiry(args.expires, time.time())
    meta = open_meta(settings)
    try:
        owner = owner_of(meta, args.owner)
        if owner is None:
            raise InvalidRequest("no users yet: avocet user create EMAIL")
        if args.site and role_of(meta, args.site, owner.id) != "owner":
            raise InvalidRequest(f"{owner.email} does not own a site with id {args.site!r}")
        key, token = create_api_key(
            meta,
            user_id=owner.id,
            site_id=args.site,
            scopes=scopes,
            name=args.name,
            expires_at=expires,
        )
    finally:
        meta.close()
    if args.json:
        print_json({"key": key.public(), "token": token})
    else:
        print(f"key {key.id} ({key.name}) for {key.site_id or 'all sites of ' + owner.email}")
        print(f"scopes: {' '.join(key.scopes)}")
        print("token (shown once, store it now):")
        print(f"  {token}")
    return 0


def cmd_key_list(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        keys = all_keys(meta)
    finally:
        meta.close()
    if args.json:
        print_json({"keys": [k.public() for k in keys]})
    elif not keys:
        print("no API keys yet: avocet key create --site ID --scopes stats:read")
    for k in [] if args.json else keys:
        state = "revoked" if k.revoked_at else ("expired" if not k.usable(time.time()) else "ok")
        site = k.site_id or "all-sites"
        print(f"{k.id}  {k.key_prefix}_****  {site}  {' '.join(k.scopes)}  {state}  {k.name}")
    return 0


def cmd_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import open_meta

    meta = open_meta(settings)
    try:
        key = revoke_key(meta, args.key_id)
    finally:
        meta.close()
    if args.json:
        print_json({"ok": True, "key": key.public()})
    else:
        print(f"key {key.id} revoked")
    return 0


def register(sub: Any) -> None:
    """Add the `user` and `key` commands to the CLI's subparsers."""
    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    create = user.add_parser("create", help="create a user (the first one is the admin)")
    create.add_argument("email")
    create.add_argument("--password-stdin", action="store_true", help="read the password")
    create.add_argument("--admin", action="store_true", help="make an instance admin")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=cmd_user_create)
    listing = user.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(func=cmd_user_list)
    for name, func, about in (
        ("reset-password", cmd_user_reset_password, "set a user's password (signs them out)"),
        ("delete", cmd_user_delete, "delete a user (not a site's only owner)"),
        ("reset-2fa", cmd_user_reset_2fa, "turn a user's two-factor sign-in off"),
    ):
        one = user.add_parser(name, help=about)
        one.add_argument("email")
        if name == "reset-password":
            one.add_argument("--password-stdin", action="store_true", help="read the password")
        one.add_argument("--json", action="store_true", help="print one JSON object")
        one.set_defaults(func=func)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(
        dest="key_command", required=True, metavar="ACTION"
    )
    kc = key.add_parser("create", help="create an API key and print its token once")
    where = kc.add_mutually_exclusive_group(required=True)
    where.add_argument("--site", help="bind the key to this site id")
    where.add_argument("--all-sites", action="store_true", help="every site the owner owns")
    kc.add_argument("--owner", help="email of the owning user (default: the first admin)")
    kc.add_argument("--scopes", default="stats:read", help="comma-separated scopes")
    kc.add_argument("--name", help="a label for the key")
    kc.add_argument("--expires", help="ISO-8601 expiry, e.g. 2026-12-31T23:59:59Z")
    kc.add_argument("--json", action="store_true", help="print the key and its token as JSON")
    kc.set_defaults(func=cmd_key_create)
    kl = key.add_parser("list", help="list API keys (masked)")
    kl.add_argument("--json", action="store_true", help="print one JSON object")
    kl.set_defaults(func=cmd_key_list)
    kr = key.add_parser("revoke", help="revoke an API key")
    kr.add_argument("key_id")
    kr.add_argument("--json", action="store_true", help="print one JSON object")
    kr.set_defaults(func=cmd_key_revoke)
