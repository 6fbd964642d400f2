"""Where an answer comes from: daily rollups where they cover the question (plus raw
events for the other days), else raw events alone. What the API surfaces call."""

from __future__ import annotations

import anyio.to_thread

from app.query import rollup
from app.query.model import Query
from app.query.run import Result, run_query_sync
from app.storage.events import EventStore


def answer_sync(store: EventStore, q: Query) -> Result:
    """Blocking: run it on a worker thread (run_query does)."""
    return rollup.answer(store, q) or run_query_sync(store, q)


async def run_query(store: EventStore, q: Query) -> Result:
    """Answer a query without blocking the event loop (DuckDB releases the GIL)."""
    return await anyio.to_thread.run_sync(answer_sync, store, q)
