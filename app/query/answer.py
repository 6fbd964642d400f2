"""Where an answer comes from: daily rollups where they cover the question (plus raw
events for the other days), else raw events alone. What the API surfaces call."""

from __future__ import annotations

import anyio.to_thread

from app.query import rollup_answer
from app.query.imported import answer_with_imports
from app.query.model import Query
from app.query.run import Result, bot_hits, run_query_sync
from app.storage.store import Store


def answer_sync(store: Store, q: Query, *, bots: bool = False) -> Result:
    """Blocking: run it on a worker thread (run_query does). bots: also count the bot hits
    of the period's days (Result.bot_hits), on the same thread."""
    if q.include_imports:
        merged = answer_with_imports(store, q, answer_sync)
        if bots:
            merged.bot_hits = bot_hits(store, q)
        return merged
    result = rollup_answer.answer(store, q)
    if result is None:
        return run_query_sync(store, q, bots=bots)
    if bots:
        result.bot_hits = bot_hits(store, q)
    return result


async def run_query(store: Store, q: Query, *, bots: bool = False) -> Result:
    """Answer a query without blocking the event loop (DuckDB releases the GIL): one hop
    to a worker thread for everything the answer needs."""
    return await anyio.to_thread.run_sync(lambda: answer_sync(store, q, bots=bots))
