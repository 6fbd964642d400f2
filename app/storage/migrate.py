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
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{kind} migrations are not numbered 001..N: {versions}")
    return found
