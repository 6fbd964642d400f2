"""Numbered SQL migrations shipped in the package, applied forward in one transaction each."""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def migrations(kind: str) -> list[Migration]:
    """All migrations of one database kind ("events" or "meta"), oldest first."""
    folder = resources.files("app.storage").joinpath("migrations", kind)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort()
    versions = [m.version for m in found]
    # Only migrations above the recorded version run, so numbers are consecutive from 001:
    # a gap filled later would be skipped on every data dir already past it.
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{kind} migrations are not numbered 001, 002, ...: {versions}")
    return found


def latest_version(kind: str) -> int:
    """The schema version a data dir has once every migration of this kind is applied."""
    found = migrations(kind)
    return found[-1].version if found else 0
