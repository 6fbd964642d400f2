"""Owner-only modes for the data dir, backups and exports (0700 folders, 0600 files).

They hold the salts of today and yesterday, password hashes, API key digests, the JWT
secret and every event: nobody but the account that runs Avocet may read them. `avocet`
sets umask 077 first thing (app/cli.py), so what DuckDB and SQLite create later (WAL
files come and go) is private too; these helpers cover folders we create and installs
made before that umask existed."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

log = logging.getLogger("avocet")

PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create path (and its parents) if missing; the folder itself ends up 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path)
    return path


def tighten(folder: Path) -> None:
    """Drop group and other permissions from folder and what it directly holds. A file
    this account may not chmod (another owner) is left as it is, with a warning: a
    running install is never broken by this."""
    _owner_only(folder)
    try:
        children = list(folder.iterdir())
    except OSError:
        return
    for child in children:
        _owner_only(child)


def _owner_only(path: Path) -> None:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):  # a link's target is not ours to change
            return
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:  # a WAL file that went away in between
        return
    except PermissionError as exc:
        log.warning("cannot make %s private: %s", path, exc)
