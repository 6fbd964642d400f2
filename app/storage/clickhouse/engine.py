"""How Avocet talks to ClickHouse (issue #24): chdb://PATH, the embedded engine on a
folder (chdb's session), or http(s)://..., a server through clickhouse-connect; the
settings every statement runs with, and the errors a statement raises. The store
(store.py) holds the SQL."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

# Every statement of Avocet's runs with these: an aggregate over no rows is NULL and a
# LEFT JOIN's missing side NULL (not 0 and ''), as in DuckDB and standard SQL, names
# resolve as DuckDB resolves them, so the
# compiler's statements (app/query/dialect.py) answer the same on both engines; and a
# read stops after QUERY_TIMEOUT_S, as DuckDB's watchdog stops it (app/query/run.py).
QUERY_SETTINGS = {
    "join_use_nulls": 1,
    # A name inside an aggregate is the column, not a select alias of the same name
    # (sum(revenue) AS revenue, count(revenue) ...), and a joined subquery needs no alias.
    "prefer_column_name_to_alias": 1,
    "joined_subquery_requires_alias": 0,
    "aggregate_functions_null_for_empty": 1,
    "max_execution_time": 30,
}


class ClickHouseError(Exception):
    """The DSN is not one Avocet can open."""


class ClickHouseQueryError(Exception):
    """A statement ClickHouse refused or stopped, with its error code (e.g. 427: a regular
    expression RE2 can't compile; 159: past max_execution_time)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def query_error(exc: Exception) -> ClickHouseQueryError:
    """chdb's and clickhouse-connect's errors both carry ClickHouse's "Code: N." text."""
    found = re.search(r"Code: (\d+)", str(exc))
    return ClickHouseQueryError(int(found.group(1)) if found else 0, str(exc))


class _Engine(Protocol):
    def run(self, sql: str, params: Mapping[str, object]) -> None: ...

    def arrow(self, sql: str, params: Mapping[str, object]) -> pa.Table: ...

    def insert(self, table: str, data: pa.Table, settings: Mapping[str, object]) -> None: ...

    def close(self) -> None: ...


def _chdb_text(value: object) -> object:
    """A parameter as chdb binds it: dates, times and lists in ClickHouse's text form, text
    in its escaped form (a backslash doubled, as a query parameter's value is parsed)."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            text = item if isinstance(item, str) else _chdb_text(item)
            if isinstance(text, str):
                text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
            items.append(str(text))
        return "[" + ",".join(items) + "]"
    return value


class _Chdb:
    """ClickHouse's embedded engine on a folder (one process at a time)."""

    def __init__(self, path: str) -> None:
        from chdb import session

        # chdb has no annotations on Session: typed here as Any, checked by the tests.
        opener: Any = session.Session
        self._session: Any = opener(path)
        self._lock = threading.Lock()
        for name, value in QUERY_SETTINGS.items():  # a session's SETs last as long as it
            self._session.query(f"SET {name} = {literal(value)}")

    def run(self, sql: str, params: Mapping[str, object]) -> None:
        self.arrow(sql, params)

    def arrow(self, sql: str, params: Mapping[str, object]) -> pa.Table:
        bound = {k: _chdb_text(v) for k, v in params.items()}
        with self._lock:
            try:
                result = self._session.query(sql, "ArrowTable", params=bound)
            except OSError:
                # chdb 4.4: the statement after one that failed mid-way (a timeout) reads
                # that one's leftover output ("Invalid flatbuffers message"); a second
                # reading of it is whole.
                result = self._session.query(sql, "ArrowTable", params=bound)
        return result if isinstance(result, pa.Table) else pa.table({})

    def insert(self, table: str, data: pa.Table, settings: Mapping[str, object]) -> None:
        # chdb's Python() table function reads `batch` from this frame.
        batch = data  # noqa: F841
        columns = ", ".join(data.column_names)
        given = ", ".join(f"{k} = {literal(v)}" for k, v in settings.items())
        with self._lock:
            self._session.query(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM Python(batch)"
                f" SETTINGS {given}"
            )

    def close(self) -> None:
        with self._lock:
            self._session.close()


class _Http:
    """A ClickHouse server (or a cluster's load balancer) through clickhouse-connect."""

    def __init__(self, dsn: str) -> None:
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(
            dsn=dsn, autogenerate_session_id=False, settings=QUERY_SETTINGS
        )
        self._lock = threading.Lock()

    def run(self, sql: str, params: Mapping[str, object]) -> None:
        with self._lock:
            self._client.command(sql, parameters=dict(params))

    def arrow(self, sql: str, params: Mapping[str, object]) -> pa.Table:
        with self._lock:
            return self._client.query_arrow(sql, parameters=dict(params))

    def insert(self, table: str, data: pa.Table, settings: Mapping[str, object]) -> None:
        with self._lock:
            self._client.insert_arrow(table, data, settings=dict(settings))

    def close(self) -> None:
        self._client.close()


def literal(value: object) -> str:
    """A value as a ClickHouse literal in SQL text (a setting's, a SET's)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(int(value) if isinstance(value, bool) else value)


def open_engine(dsn: str) -> _Engine:
    """chdb://PATH: the embedded engine on that folder; http(s)://...: a server.

    With TEST_AVOCET_CLICKHOUSE_DRIVER=1 (tests only) a chdb:// folder is opened through
    clickhouse-connect, the driver of http(s)://, whose chdb backend runs the same client
    code (parameter binding, Native and Arrow transforms, settings) against the embedded
    engine: the tests' way to run the server path's code without a server."""
    if dsn.startswith("chdb://"):
        path = dsn.removeprefix("chdb://")
        if not path:
            raise ClickHouseError("clickhouse.dsn: chdb:// needs a folder, e.g. chdb://data/ch")
        if os.environ.get("TEST_AVOCET_CLICKHOUSE_DRIVER") == "1":
            return _Http(f"chdb://{Path(path).resolve()}")
        return _Chdb(path)
    if dsn.startswith(("http://", "https://")):
        return _Http(dsn)
    raise ClickHouseError(f"clickhouse.dsn: expected chdb://PATH or http(s)://..., got {dsn!r}")
