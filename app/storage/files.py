"""Owner-only modes for the data dir, backups and exports (0700 folders, 0600 files).

They hold the salts of today and yesterday, password hashes, API key digests, the JWT
secret and every event: nobody but the account that runs Avocet may read them. `avocet`
sets umask 077 first thing (app/cli.py), so what DuckDB and SQLite create later (WAL
files come and go) is private too; these helpers cover folders we create and installs
made before that umask existed."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Collection
from pathlib import Path

from app.errors import AppError

log = logging.getLogger("avocet")

PRIVATE_UMASK = 0o077


class FolderNotWritable(AppError):
    """A folder Avocet must write into belongs to another user (the usual case: a host
    folder bind-mounted into the container, owned by root, while Avocet runs as uid 1000)."""

    code = "not_writable"


def private_dir(path: Path) -> Path:
    """Create path (and its parents) if missing; the folder itself ends up 0700.
    FolderNotWritable, saying how to fix it, when this user can't write into it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except PermissionError as exc:
        raise FolderNotWritable(_fix_owner(path, exc.filename)) from exc
    check_writable(path, os.geteuid(), {os.getegid(), *os.getgroups()})
    _owner_only(path)
    return path


def check_writable(path: Path, uid: int, gids: Collection[int]) -> None:
    """FolderNotWritable unless uid (in gids) may create files in path, by its mode bits
    (root may always; an ACL is not consulted)."""
    st = path.stat()
    if uid == 0:
        return
    if st.st_uid == uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid in gids:
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    if st.st_mode & bits != bits:
        raise FolderNotWritable(_fix_owner(path, None, uid, st.st_uid))


def _fix_owner(path: Path, blocked: str | None, uid: int = -1, owner: int = -1) -> str:
    uid = os.geteuid() if uid < 0 else uid
    where = f"{path} (its parent {blocked} is not writable)" if blocked else str(path)
    owned = f", owned by uid {owner}" if owner >= 0 else ""
    return (
        f"cannot write into {where}{owned}: Avocet runs as uid {uid}. Give the folder to"
        f" that user (for a Docker bind mount, on the host: sudo chown -R {uid}:{uid}"
        " ./data), or run the container as the folder's owner (docker run --user"
        " $(id -u):$(id -g) ...), or use a named volume (-v avocet-data:/data)."
    )


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
