"""The stats compiler's DuckDB SQL, byte for byte: 200 seeded random questions
(tests/query_questions.py) and their imported-aggregate statements, compiled and compared with
tests/snapshots/compile_duckdb.txt. Taking ClickHouse in (issue #24's Dialect) must leave
DuckDB's text unchanged; a deliberate change rewrites the file
(AVOCET_UPDATE_SNAPSHOTS=1 pytest tests/test_compile_snapshots.py) and shows in its diff."""

from __future__ import annotations

import os
from pathlib import Path

from app.query.compile import compile_query
from app.query.compile_imported import compile_imported, decide
from app.query.rollup import COMPONENTS
from tests.query_questions import questions

SNAPSHOT = Path(__file__).parent / "snapshots" / "compile_duckdb.txt"


def compiled_text() -> str:
    blocks = []
    for i, q in enumerate(questions(seed=1, n=200)):
        compiled = compile_query(q)
        blocks.append(
            f"--- {i} stats keys={list(compiled.keys)}\n{compiled.sql}\n{compiled.params!r}"
        )
        table = decide(q).table
        if table is not None:
            sql, params = compile_imported(q, table, COMPONENTS)
            blocks.append(f"--- {i} imported {table}\n{sql}\n{params!r}")
    return "\n".join(blocks) + "\n"


def test_duckdb_sql_is_unchanged() -> None:
    text = compiled_text()
    if os.environ.get("AVOCET_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text()
    if text != expected:  # the first block that differs, not a 300 kB diff
        for new, old in zip(text.split("\n--- "), expected.split("\n--- "), strict=False):
            assert new == old
    assert text == expected
