"""The server path's code (issue #24): a `dsn = "http(s)://..."` store talks to ClickHouse
through clickhouse-connect (engine._Http: parameters bound by the driver, inserts as Arrow
with the deduplication settings, reads as Arrow), which no test could reach without a
server. clickhouse-connect also has a chdb backend that runs the same client code against
ClickHouse's embedded engine, and TEST_AVOCET_CLICKHOUSE_DRIVER=1 opens chdb:// folders
through it. Here a pytest process with that set runs the store's tests, 250 of the parity
test's questions against DuckDB, a site deletion with imports and the CLI's import through a
running server: every one must pass through the driver as it does on chdb directly.

Not covered: the HTTP transport itself (a server's HTTP interface, compression, retries);
the engine is a process's own, as for chdb://. (Run once with every ClickHouse test of
the suite: 598 of 599 passed; the other is chdb's, not the driver's: a read after one
interrupted by its timeout reads that one's leftover output, which engine._Chdb retries;
a server's HTTP answers don't share that state.)"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)

THROUGH_THE_DRIVER = [
    "tests/test_clickhouse_store.py",
    # Half the parity questions (250 of 500, every shape the generator makes): the other
    # half adds CI time, not shapes (the suite runs against a 15-minute limit).
    "tests/test_clickhouse_parity.py::test_random_questions_answer_the_same_on_both_engines[5]",
    "tests/test_clickhouse_parity.py::test_exit_pages_where_last_pageviews_share_an_instant",
    "tests/test_clickhouse_parity.py::test_a_pattern_re2_refuses_is_the_askers_error_on_both",
    "tests/test_deletion.py::test_site_deletion_removes_its_imported_stats[clickhouse]",
    "tests/test_imports.py::test_while_the_server_runs_the_cli_imports_through_the_api[clickhouse]",
]


def test_the_clickhouse_tests_pass_through_clickhouse_connect(tmp_path: Path) -> None:
    env = {**os.environ, "TEST_AVOCET_CLICKHOUSE_DRIVER": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "t"), *THROUGH_THE_DRIVER],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # Every test ran and passed (none skipped or deselected), the store's 16 and more.
    found = re.fullmatch(r"(\d+) passed(, \d+ warnings?)? in .*", summary)
    assert found and int(found.group(1)) >= 23, summary


def test_the_driver_is_what_those_tests_used(tmp_path: Path) -> None:
    """The switch is real: with it, a chdb:// store's engine is clickhouse-connect's
    client (its chdb backend); without it, chdb's own session."""
    script = (
        "from app.storage.clickhouse.store import ClickHouseEventStore\n"
        f"s = ClickHouseEventStore('chdb://{tmp_path / 'ch'}')\n"
        "print(type(s._engine).__name__, type(getattr(s._engine, '_client', None)).__name__)\n"
        "s.close()\n"
    )
    found = {}
    for switch in ("1", "0"):
        env = {**os.environ, "TEST_AVOCET_CLICKHOUSE_DRIVER": switch}
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        found[switch] = out.stdout.split()
    assert found == {"1": ["_Http", "ChdbClient"], "0": ["_Chdb", "NoneType"]}
