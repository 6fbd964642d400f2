"""Where the server's background work runs: lifecycle jobs (rollups, pruning, compaction,
re-dating), checkpoints and file rewrites, on threads the OS schedules after request
handling (nice 10, Linux schedules threads one by one).

On a one-core server a rollup of a busy site used to take half the CPU from the event loop
for its whole run, doubling every request's latency (p99 25 -> 60-80 ms in bench/ingest.py
--jobs). At a lower priority it gets what the requests leave: an idle server runs it at
full speed, a loaded one stretches it out. It holds nothing the requests wait for: ingest
goes to the journal while it holds the writer (app/storage/journal.py), and a thread that
waits for a lock or the GIL it holds sleeps, so it runs."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

log = logging.getLogger("avocet.jobs")

NICE = 10  # CFS weight 110 against 1024: ~10 % of a core the requests want

P = ParamSpec("P")
T = TypeVar("T")


def lower_priority() -> None:
    """Lower the calling thread's scheduling priority (where the OS allows it)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (OSError, AttributeError):  # not Linux, or not allowed: run at normal priority
        log.debug("could not lower the background threads' priority")


# Two threads: a checkpoint need not wait behind an hour-long catch-up job.
_executor = ThreadPoolExecutor(
    max_workers=2, thread_name_prefix="avocet-background", initializer=lower_priority
)


async def in_background(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run fn(*args, **kwargs) on a background thread, in a copy of the caller's context
    (contextvars, as anyio.to_thread does); return its result."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await loop.run_in_executor(_executor, call)
