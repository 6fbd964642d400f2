"""Exclusion rules per site (meta/010 site_exclusions): validated and normalised here, so
what is stored is what ingest compiles (app/ingest/shields.py)."""

from __future__ import annotations

import ipaddress
import re
import secrets
import sqlite3
import time
from typing import Any, Literal

import msgspec

from app.errors import Conflict, InvalidRequest, NotFound
from app.storage.meta import MetaStore

Kind = Literal["ip", "hostname", "page", "country"]
KINDS: tuple[Kind, ...] = ("ip", "hostname", "page", "country")
MAX_RULES = 200  # per site: every hit of the site is checked against them
_HOST = re.compile(r"^[a-z0-9*](?:[a-z0-9*.-]{0,251}[a-z0-9*])?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class Exclusion(msgspec.Struct, frozen=True):
    id: str
    site_id: str
    kind: Kind
    value: str
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.kind,
            "value": self.value,
            "created_at": self.created_at,
        }


def normalize_rule(kind: str, value: str) -> tuple[Kind, str]:
    """(kind, the value as stored), or InvalidRequest naming what is wrong."""
    value = value.strip()
    if not value:
        raise InvalidRequest("value: can't be blank")
    if kind == "ip":
        try:  # an address is its own /32 or /128; host bits of a network are dropped
            return "ip", str(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise InvalidRequest(
                f"value: not an IP address or CIDR range: {value[:64]!r}"
                " (e.g. 203.0.113.7, 203.0.113.0/24, 2001:db8::/32)"
            ) from exc
    if kind == "hostname":
        host = value.lower().removeprefix("www.")
        if not _HOST.match(host) or ".." in host:
            raise InvalidRequest(
                f"value: not a hostname pattern: {value[:64]!r} (e.g. example.com, *.example.com)"
            )
        return "hostname", host
    if kind == "page":
        if not value.startswith("/") or len(value) > 500:
            raise InvalidRequest("value: a page path starts with / (e.g. /admin/*), ≤ 500 chars")
        return "page", value
    if kind == "country":
        code = value.upper()
        if not _COUNTRY.match(code):
            raise InvalidRequest(f"value: not a two-letter country code: {value[:64]!r}")
        return "country", code
    raise InvalidRequest(f"type: must be one of {', '.join(KINDS)}")


_COLUMNS = "id, site_id, kind, value, created_at"


def exclusions_of(meta: MetaStore, site_id: str) -> list[Exclusion]:
    rows = meta.fetchall(
        f"SELECT {_COLUMNS} FROM site_exclusions WHERE site_id = ? ORDER BY kind, value",
        (site_id,),
    )
    return [Exclusion(*row) for row in rows]


def all_rules(meta: MetaStore) -> dict[str, list[tuple[str, str]]]:
    """Every site's rules as (kind, value), for the ingest's site directory."""
    rules: dict[str, list[tuple[str, str]]] = {}
    for site_id, kind, value in meta.fetchall("SELECT site_id, kind, value FROM site_exclusions"):
        rules.setdefault(site_id, []).append((kind, value))
    return rules


def add_exclusion(meta: MetaStore, site_id: str, kind: str, value: str) -> Exclusion:
    """Store a rule (Conflict when the site has it already)."""
    kind, value = normalize_rule(kind, value)
    row = meta.fetchone("SELECT count(*) FROM site_exclusions WHERE site_id = ?", (site_id,))
    if row and int(row[0]) >= MAX_RULES:
        raise InvalidRequest(f"value: a site has at most {MAX_RULES} exclusion rules")
    rule = Exclusion(f"{secrets.token_hex(8)}", site_id, kind, value, int(time.time()))
    try:
        meta.execute(
            f"INSERT INTO site_exclusions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (rule.id, rule.site_id, rule.kind, rule.value, rule.created_at),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"value: {value!r} is already excluded") from exc
    return rule


def delete_exclusion(meta: MetaStore, site_id: str, rule_id: str) -> None:
    gone = meta.execute(
        "DELETE FROM site_exclusions WHERE site_id = ? AND id = ?", (site_id, rule_id)
    )
    if not gone:
        raise NotFound("exclusion rule not found")
