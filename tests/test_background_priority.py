"""Background work (jobs, checkpoints, rewrites) runs on threads the OS schedules after the
request handling (#23): nice 10, thread by thread on Linux."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading

from app.jobs.background import NICE, in_background

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")


def test_background_threads_run_at_a_lower_priority_in_the_callers_context() -> None:
    def probe() -> tuple[int, int, str]:
        tid = threading.get_native_id()
        return tid, os.getpriority(os.PRIO_PROCESS, tid), marker.get()

    async def scenario() -> tuple[int, int, str]:
        marker.set("from the caller")  # the control socket's output routing relies on it
        return await in_background(probe)

    tid, nice, seen = asyncio.run(scenario())
    assert tid != threading.get_native_id()
    assert nice == NICE  # the event loop's thread keeps its own
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != NICE
    assert seen == "from the caller"
