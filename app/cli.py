"""The `avocet` command line: serve, and every other command (app/cli_commands.py)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from app.cli_commands import build_parser
from app.cli_served import SERVED_COMMANDS, command_of, forward
from app.config import ConfigError, Settings, load_settings
from app.errors import AppError
from app.storage.files import PRIVATE_UMASK


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """`avocet serve`, and the cluster's other nodes: `avocet collector`, `avocet sessionizer`."""
    import uvicorn

    from app.services import StartupError

    if args.command == "collector":
        from app.nodes import create_collector_app as create_app
    elif args.command == "sessionizer":
        from app.nodes import create_sessionizer_app as create_app
    else:
        from app.main import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "debug":  # a line per job run and per job added, otherwise
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.command == "serve" and not settings.public_url and not settings.listens_on_loopback:
        logging.getLogger("avocet").warning(
            "listening on %s without public_url: `avocet site add` prints snippets for %s"
            " and the UI's snippets and links use whatever address a page was opened at."
            " Set public_url (AVOCET_PUBLIC_URL) to the address visitors reach, e.g."
            " https://analytics.example.com",
            settings.host,
            settings.local_url,
        )
    app = create_app(settings)
    server = uvicorn.Server(server_config(settings, app))
    logging.getLogger("uvicorn.error").addFilter(_OneLineStartupFailure(app))
    # Everything imported and built so far lives as long as the process: keep it out of
    # every future collection (a serving process allocates per request, rarely cycles).
    gc.freeze()
    # Requests allocate many short-lived objects that refcounting frees; collecting the young
    # generation every 700 allocations cost ~10 % of throughput under load for nothing.
    gc.set_threshold(50_000, 20, 100)
    try:
        server.run()
    except SystemExit:
        error = app.state.get("startup_error")
        if error:
            gc.unfreeze()  # frozen, DuckDB's objects outlive the interpreter (nanobind warns)
            raise StartupError(error) from None
        raise
    return 0


class _OneLineStartupFailure(logging.Filter):
    """uvicorn logs a failed start as Litestar's whole traceback (an exception group);
    once the lifespan has recorded what went wrong, cmd_serve prints that one line."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self._app = app

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not self._app.state.get("startup_error")


def server_config(settings: Settings, app: Any) -> Any:
    """uvicorn's config for the app (app/server.py; imported here only when serving)."""
    from app.server import server_config as config

    return config(settings, app)


def _served_by_server(args: argparse.Namespace) -> bool:
    """Commands that need the events file run in the running server when there is one
    (`backup --url/--token` asks a server over HTTP instead)."""
    if command_of(args) not in SERVED_COMMANDS:
        return False
    return not (args.command == "backup" and (args.url or args.token))


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever any command creates (data files, WAL files, backups, exports) is owner-only.
    os.umask(PRIVATE_UMASK)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    for flag, key in (("data_dir", "DATA_DIR"), ("host", "HOST"), ("port", "PORT")):
        value = getattr(args, flag, None)
        if value is not None:
            env[f"AVOCET_{key}"] = str(value)
    try:
        settings = load_settings(args.config, env)
        if _served_by_server(args):
            code = forward(settings, argv)  # the running server holds the events file
            if code is not None:
                return code
        return int((args.func or cmd_serve)(settings, args))
    except (ConfigError, AppError) as exc:
        message = exc.message if isinstance(exc, AppError) else str(exc)
        print(f"avocet: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
