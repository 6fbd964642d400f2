"""The CLI's local channel to the running server: a Unix socket in the data dir.

DuckDB lets one process open the events file, so while `avocet serve` runs, the commands
that need it (doctor, export, backup, rollup, prune, compact) can't open it themselves.
They don't have to: the server listens on `<data_dir>/avocet.sock` (owner-only: the data
dir is 0700, the socket 0600, and the server checks the peer's uid), the CLI sends it its
arguments, and the server runs the very same command on its own open store, streaming
the command's output and progress back. Nothing to configure and no token: whoever can
open the data dir's files can ask (inside Docker too: `docker exec` runs as the same user).

One JSON object per line. The CLI sends {"argv", "cwd", "tty"}; the server answers
{"out": text} / {"err": text} as the command writes, then {"exit": code}."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec

from app.config import Settings
from app.errors import NotOnThisStorage
from app.storage.events import EventStore
from app.storage.store import Store

SOCKET_FILE = "avocet.sock"
# sun_path holds 108 bytes; a longer path is reached through /proc/self/fd/N/avocet.sock.
_MAX_PATH = 100
# The commands the CLI hands to a running server: those that need the events file, and
# `site rename` (the server's directory of sites must follow at once); `site delete` and
# `site reset` need both (their job runs in the server's queue of deletions).
SERVED_COMMANDS = frozenset(
    {
        "doctor",
        "export",
        "backup",
        "rollup",
        "prune",
        "compact",
        "site rename",
        "site delete",
        "site reset",
    }
)


def command_of(args: Any) -> str:
    """The command named on the command line: "export", "site rename"."""
    sub = getattr(args, "site_command", None) if args.command == "site" else None
    return f"{args.command} {sub}" if sub else str(args.command)


@dataclass(frozen=True)
class Served:
    """What a command run by the server gets instead of opening files: the live store, the
    CLI's working directory (its relative paths mean what they meant there), and submit(),
    which hands a queued deletion request to the server's jobs (from any thread)."""

    events: Store
    cwd: Path
    submit: Callable[[str], None] | None = None


_served: ContextVar[Served | None] = ContextVar("avocet_served", default=None)


def served() -> Served | None:
    """Set while the running server executes a command for the CLI."""
    return _served.get()


@contextlib.contextmanager
def serving(
    events: Store, cwd: Path, submit: Callable[[str], None] | None = None
) -> Iterator[None]:
    token = _served.set(Served(events, cwd, submit))
    try:
        yield
    finally:
        _served.reset(token)


class _Borrowed:
    """The server's store lent to a command: everything but close()."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def close(self) -> None:
        pass  # the server's, open until it stops

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def open_events(settings: Settings) -> Store:
    """The events store for a CLI command: the running server's when it runs the command,
    else the file, or ClickHouse (StoreLocked when another process holds it)."""
    found = served()
    if found is not None:
        return cast(Store, _Borrowed(found.events))
    if settings.storage == "clickhouse":
        from app.storage.clickhouse.store import ClickHouseEventStore

        return ClickHouseEventStore.unheld(settings.clickhouse_dsn)
    return EventStore(Path(settings.data_dir) / "events.duckdb", settings.duckdb)


def duckdb_only(store: Store, command: str) -> EventStore:
    """The store when it is DuckDB's (a borrowed one included); else NotOnThisStorage."""
    inner = store._store if isinstance(store, _Borrowed) else store
    if isinstance(inner, EventStore):
        return cast(EventStore, store)
    raise NotOnThisStorage(
        f'`avocet {command}` needs storage = "duckdb": not available on ClickHouse yet (issue #24)'
    )


def cli_path(value: str) -> Path:
    """A path named on the command line, relative to the CLI's working directory."""
    found = served()
    path = Path(value)
    return found.cwd / path if found is not None and not path.is_absolute() else path


def socket_path(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / SOCKET_FILE


@contextlib.contextmanager
def reachable(path: Path) -> Iterator[str]:
    """An address for bind()/connect() of a socket at `path`, however long the path."""
    if len(os.fsencode(path)) <= _MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class _Line(msgspec.Struct, frozen=True):
    out: str | None = None
    err: str | None = None
    exit: int | None = None


_decode_line = msgspec.json.Decoder(_Line).decode


def forward(settings: Settings, argv: list[str]) -> int | None:
    """Run the command on the running server; its exit code, or None when no server
    answers on the data dir's socket (then the CLI opens the files itself)."""
    path = socket_path(settings)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with reachable(path) as address:
            sock.connect(address)
    except OSError:  # a socket left by a server that died, or not ours to use
        sock.close()
        return None
    with sock, sock.makefile("rb") as answers:
        request = {"argv": argv, "cwd": os.getcwd(), "tty": sys.stderr.isatty()}
        sock.sendall(msgspec.json.encode(request) + b"\n")
        for raw in answers:
            line = _decode_line(raw)
            if line.out is not None:
                sys.stdout.write(line.out)
                sys.stdout.flush()
            if line.err is not None:
                sys.stderr.write(line.err)
                sys.stderr.flush()
            if line.exit is not None:
                return line.exit
    print("avocet: the server closed the connection before the command ended", file=sys.stderr)
    return 1
