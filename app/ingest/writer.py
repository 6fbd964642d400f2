"""Group commit: requests join the open batch; one writer commits batches back to back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from app.storage.events import Row

log = logging.getLogger("avocet.writer")
# A commit costs DuckDB ~5 ms of CPU for 64 rows on a 2-core test machine, mostly fixed
# (statement set-up, WAL, one fsync), so rows per commit is what throughput depends on; see
# _settle.
# _settle: how long a batch may wait for the clients the previous commit answered, and the
# gap without a new row that ends the wait sooner (longer than a loopback round trip).
MAX_WAIT = 0.010
QUIET_GAP = 0.002


class Appends(Protocol):
    """What the writer commits to: a Store, or a sessionizer's RemoteStore."""

    def append(
        self,
        rows: Sequence[Row],
        bot_hits: Iterable[tuple[str, int, int]] = (),
        excluded: Iterable[tuple[str, int, str, int]] = (),
    ) -> None: ...


class _Batch:
    """Rows for one commit, and the future of each request waiting on it. One future each,
    not one shared future behind asyncio.shield, which costs a request two more futures and
    two Python callbacks (~5 µs, measured): a client hanging up cancels its own future,
    which the writer then skips, never the batch."""

    __slots__ = ("bots", "excluded", "rows", "waiters")

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.bots: dict[tuple[str, int], int] = {}
        self.excluded: dict[tuple[str, int, str], int] = {}
        self.waiters: list[asyncio.Future[None]] = []


class Writer:
    """No timer: the next commit starts the moment the previous one ends, so an idle server
    acknowledges within one commit and a busy one puts more rows in each. Every request of
    a batch awaits its own future, resolved only after the batch's transaction committed."""

    def __init__(
        self, store: Appends, max_batch_rows: int = 10_000, min_interval: float = 0.0
    ) -> None:
        self._store = store
        self._max = max_batch_rows
        # At least this long between the starts of two commits (ClickHouse: each insert is
        # a part that merges must fold in, so a few per second, not one per hit); a batch
        # that reaches max_batch_rows goes at once. 0: back to back (DuckDB).
        self._min_interval = min_interval
        self._last_start = 0.0
        self._batches: deque[_Batch] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # One thread: DuckDB appends are serialised anyway, and it keeps commit order.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="avocet-writer")
        self.committed_rows = 0
        self.commits = 0
        self.commit_seconds = 0.0  # wall time inside commits, and the slowest one
        self.slowest_commit = 0.0
        self._expect = 1  # rows waiting on the writer when the last commit finished
        self._committing: _Batch | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="avocet-writer")

    async def stop(self) -> None:
        """Commit everything still pending, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def pending_rows(self) -> int:
        return sum(len(b.rows) for b in self._batches)

    def _open_batch(self) -> _Batch:
        if not self._batches or len(self._batches[-1].rows) >= self._max:
            self._batches.append(_Batch())
        return self._batches[-1]

    async def write(self, row: Row) -> None:
        """Return once the row is committed; raise if its commit failed."""
        if self._closing:
            raise RuntimeError("writer is stopping")
        batch = self._open_batch()
        batch.rows.append(row)
        waiter = asyncio.get_running_loop().create_future()
        batch.waiters.append(waiter)
        self._wake.set()
        await waiter

    async def drain(self) -> None:
        """Return once every row handed to write() so far is committed (or its commit
        failed). Writes started together by asyncio.gather join their batch one loop pass
        later: that pass is let run first."""
        await asyncio.sleep(0)
        last = self._batches[-1] if self._batches else self._committing
        if last is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        last.waiters.append(waiter)  # batches commit in order: the last one ends last
        self._wake.set()
        with contextlib.suppress(Exception):
            await waiter

    def count_bot(self, site_id: str, day: int, hits: int = 1) -> None:
        """Count a dropped bot hit; it is committed with the next batch (nobody waits)."""
        batch = self._open_batch()
        key = (site_id, day)
        batch.bots[key] = batch.bots.get(key, 0) + hits
        self._wake.set()

    def count_excluded(self, site_id: str, day: int, reason: str, hits: int = 1) -> None:
        """Count a hit dropped by an exclusion rule, like count_bot."""
        batch = self._open_batch()
        key = (site_id, day, reason)
        batch.excluded[key] = batch.excluded.get(key, 0) + hits
        self._wake.set()

    async def _settle(self) -> None:
        """Let requests that are already on their way join this commit instead of the next.

        No fixed timer. First, passes over the loop while they add rows (requests that have
        arrived finish their handling). Then, while the batch is smaller than the number of
        requests that were waiting at the end of the previous commit (the clients it just
        answered are likely to send again), short waits, each ended by a quiet gap with no
        new row, and never beyond MAX_WAIT. Without that second part two half-size batches
        alternate under steady load: twice the commits, each costing ~5 ms of CPU."""
        batch = self._batches[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_WAIT
        while len(batch.rows) < self._max:
            before = len(batch.rows)
            await asyncio.sleep(0)
            if len(batch.rows) > before:
                continue
            if len(batch.rows) >= self._expect or loop.time() >= deadline:
                return
            await asyncio.sleep(QUIET_GAP)
            if len(batch.rows) == before:
                return

    async def _space_out(self) -> None:
        """Wait out the rest of min_interval since the last commit began, unless the batch
        fills first (polled: a few passes per interval cost nothing)."""
        loop = asyncio.get_running_loop()
        due = self._last_start + self._min_interval
        while (left := due - loop.time()) > 0 and len(self._batches[0].rows) < self._max:
            await asyncio.sleep(min(left, self._min_interval / 8))
        self._last_start = loop.time()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._batches:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            await self._settle()
            if self._min_interval:
                await self._space_out()
            batch = self._committing = self._batches.popleft()
            bots = [(site, day, hits) for (site, day), hits in batch.bots.items()]
            excluded = [(*key, hits) for key, hits in batch.excluded.items()]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(
                    self._executor, self._store.append, batch.rows, bots, excluded
                )
            except Exception as exc:
                log.exception("commit of %d rows failed", len(batch.rows))
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                took = time.perf_counter() - started
                self.commit_seconds += took
                self.slowest_commit = max(self.slowest_commit, took)
                self.commits += 1
                self.committed_rows += len(batch.rows)
                for waiter in batch.waiters:
                    if not waiter.done():  # done = cancelled: its client hung up
                        waiter.set_result(None)
            self._committing = None
            self._expect = len(batch.rows) + self.pending_rows
