"""The running server's side of the CLI's local channel (see app/cli_served.py): a Unix
socket in the data dir, served by an asyncio server started with the other services.

Each connection runs one CLI command, parsed by the CLI's own parser, in a worker thread
with the server's open events store lent to it; what the command prints goes back to the
CLI as it is printed. Data jobs (rollup, prune, compact) take the jobs lock, as the
scheduled ones do, so a command never runs beside the hourly rollup."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio.to_thread
import msgspec

from app.cli_served import SERVED_COMMANDS, command_of, reachable, serving, socket_path
from app.config import ConfigError
from app.errors import AppError
from app.jobs.background import in_background

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger("avocet")

# Commands that change the events store the way the scheduled jobs do.
LOCKED_COMMANDS = frozenset({"rollup", "prune", "compact"})
MAX_REQUEST = 64 * 1024

Sink = Callable[[str, str], None]
_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("avocet_sink", default=None)
_tty: contextvars.ContextVar[bool] = contextvars.ContextVar("avocet_tty", default=False)


class _Routed:
    """sys.stdout / sys.stderr while commands run: a command's writes go to its CLI,
    everything else's to the stream as before."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        sink = _sink.get()
        if sink is None:
            return self._stream.write(text)
        sink(self._name, text)
        return len(text)

    def isatty(self) -> bool:
        return _tty.get() if _sink.get() is not None else self._stream.isatty()

    def flush(self) -> None:
        if _sink.get() is None:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _route_output() -> None:
    # Installed again before each command: a test runner may have swapped the streams.
    if not isinstance(sys.stdout, _Routed):
        sys.stdout = _Routed(sys.stdout, "out")
    if not isinstance(sys.stderr, _Routed):
        sys.stderr = _Routed(sys.stderr, "err")


class _Request(msgspec.Struct, frozen=True):
    argv: list[str]
    cwd: str
    tty: bool = False


class ControlServer:
    """Listens on <data_dir>/avocet.sock while the server runs."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._path = socket_path(svc.settings)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        # A socket left by a server that died: this one holds the events file, so no other
        # server of this data dir is listening on it.
        self._path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with reachable(self._path) as address:
                sock.bind(address)
            os.chmod(self._path, 0o600)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer):
                return
            line = await reader.readuntil(b"\n")
            request = msgspec.json.decode(line, type=_Request)
            code = await self._run(request, _sender(writer))
            _write(writer, msgspec.json.encode({"exit": code}) + b"\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the CLI went away (the command, once started, still ran to its end)
        except msgspec.DecodeError:
            log.warning("control socket: a request that is not Avocet's was ignored")
        finally:
            writer.close()

    async def _run(self, request: _Request, send: Sink) -> int:
        from app.cli_commands import build_parser

        svc = self._svc
        # This connection's task (and the worker thread, which gets a copy of its context)
        # prints to the CLI.
        _sink.set(send)
        _tty.set(request.tty)
        _route_output()
        try:
            args = build_parser().parse_args(request.argv)
        except SystemExit as exc:  # argparse printed why (to the CLI)
            return int(exc.code or 0)
        if command_of(args) not in SERVED_COMMANDS:
            send("err", f"avocet: {command_of(args)} is not run by the server\n")
            return 2

        loop = asyncio.get_running_loop()

        def submit(request_id: str) -> None:
            def start() -> None:
                svc.sites.reload()  # a deleted site collects nothing more from now on
                if svc.submit_deletion is not None:
                    svc.submit_deletion(request_id)

            loop.call_soon_threadsafe(start)

        def run() -> int:
            try:
                with serving(svc.events, Path(request.cwd), submit):
                    return int(args.func(svc.settings, args))
            except (ConfigError, AppError) as exc:
                message = exc.message if isinstance(exc, AppError) else str(exc)
                send("err", f"avocet: {message}\n")
                return 2

        if args.command in LOCKED_COMMANDS:
            async with svc.jobs.lock:
                await svc.writer.drain()  # events on their way are in before the job
                code = await in_background(run)  # after requests, as the scheduler's jobs
        else:
            code = await anyio.to_thread.run_sync(run)
        svc.sites.reload()  # a renamed site, re-dated zones: ingestion sees them now
        return code


def _sender(writer: asyncio.StreamWriter) -> Sink:
    """Sends a command's output to its CLI, from the worker thread, in order."""
    loop = asyncio.get_running_loop()

    def send(stream: str, text: str) -> None:
        data = msgspec.json.encode({stream: text}) + b"\n"
        loop.call_soon_threadsafe(_write, writer, data)

    return send


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():  # a CLI interrupted with Ctrl-C reads no more
        writer.write(data)


def _same_user(writer: asyncio.StreamWriter) -> bool:
    """The peer runs as this server's user (or root): the socket's mode and the data dir's
    already say so; this holds even if someone loosens them."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    if uid in (0, os.getuid()):
        return True
    log.warning("control socket: refused a connection from uid %d", uid)
    return False
