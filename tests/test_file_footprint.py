"""The events file stays near its used size (#23): compaction gives freed blocks back by a
rewrite once they pass 10 % of the used ones, keeping every row; `avocet doctor` shows the
file's size against its used blocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from app.jobs.lifecycle import compact
from tests.test_compaction import _rows, opened
from tests.test_lifecycle_cli import cli, make_data


def _sizes(data: Path) -> tuple[int, int]:
    with opened(data) as svc:
        svc.events.checkpoint()
        return svc.events.usage()


def test_compaction_gives_freed_blocks_back_and_keeps_every_row(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 60_000)
    with opened(data) as svc:
        store = svc.events
        before = _rows(svc)
        store.checkpoint()
        size, used = store.usage()
        assert size <= used * 1.1 + (1 << 20)
        # Compaction rewrites each finished day's rows: the old rows' blocks are freed (the
        # file nearly doubled here before) and given back by a rewrite at the end.
        report = compact(store, datetime.now(UTC))
        assert len(report.done) == 39
        assert report.rewritten is not None
        after_size, after_used = store.usage()
        assert report.rewritten == after_size == (data / "events.duckdb").stat().st_size
        assert after_size <= after_used * 1.1
        assert _rows(svc) == before
        # Nothing freed since: the next run leaves the file alone.
        assert compact(store, datetime.now(UTC)).rewritten is None


def test_doctor_reports_file_size_against_used_blocks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_data(data, 3_000)
    size, used = _sizes(data)
    done = cli(data, "doctor", "--json")
    assert done.returncode == 0, done.stderr
    file = json.loads(done.stdout)["events"]["file"]
    assert (file["bytes"], file["used_bytes"]) == (size, used)
    assert file["ratio"] == round(size / used, 3)
    assert file["journal_bytes"] == 0
    text = cli(data, "doctor").stdout
    assert f"  file: {size / (1 << 20):.1f} MB on disk, {used / (1 << 20):.1f} MB in use" in text
