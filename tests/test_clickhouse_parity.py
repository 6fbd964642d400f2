"""The same questions, the same answers on both engines (issue #24): 500 seeded random
questions over the compiler's whole grammar (tests/query_questions.py), asked of a DuckDB
events file and of ClickHouse's own engine (chdb) holding the same rows, through
run_query_sync (compile for the store's dialect, execute, zero-fill). Every answer must
be equal: the same rows in the same order, counts exactly, fractions to 1e-9."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from app.errors import InvalidRequest
from app.query.model import Filter, Query
from app.query.periods import Period
from app.query.run import run_query_sync
from app.storage.clickhouse.store import ClickHouseEventStore
from app.storage.events import EventStore
from tests.query_questions import FIRST_DAY, LAST_DAY, SITES, differences, events, questions

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)

SEEDS = [5, 6]
PER_SEED = 250


class Engines:
    def __init__(self, duck: EventStore, ch: ClickHouseEventStore) -> None:
        self.duck, self.ch = duck, ch


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    root = tmp_path_factory.mktemp("parity")
    rows = events()
    duck = EventStore(root / "events.duckdb")
    duck.append(rows)
    ch = ClickHouseEventStore(f"chdb://{root / 'clickhouse'}")
    ch.append(rows)
    yield Engines(duck, ch)
    ch.close()
    duck.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_questions_answer_the_same_on_both_engines(engines: Engines, seed: int) -> None:
    answered = nonempty = 0
    for i, q in enumerate(questions(seed, PER_SEED)):
        duck = run_query_sync(engines.duck, q)
        ch = run_query_sync(engines.ch, q)
        assert not differences(duck, ch), (i, q, differences(duck, ch))
        answered += 1
        nonempty += any(
            any(v not in (0, None) for k, v in r.items() if k in q.metrics) for r in duck.rows
        )
    assert answered == PER_SEED
    # The questions mostly find data: the comparison is not of empty answers.
    assert nonempty > PER_SEED * 2 // 5, nonempty


@pytest.mark.parametrize("site", list(SITES))
def test_exit_pages_where_last_pageviews_share_an_instant(engines: Engines, site: str) -> None:
    """A visit's exit page is its last pageview by (time, path): imports have whole seconds,
    so two pageviews of a visit can share an instant, and the engines must not pick one by
    chance. The answer key is computed here from the rows."""
    last: dict[int, tuple[datetime, str]] = {}
    for r in events():
        if r[0] == site and r[3] == "pageview":
            last[r[5]] = max(last.get(r[5], (r[1], r[7])), (r[1], r[7]))
    expected = Counter(path for _, path in last.values())
    first = FIRST_DAY - timedelta(days=1)
    end = LAST_DAY + timedelta(days=2)
    q = Query(
        site_id=site,
        period=Period(
            preset="custom",
            timezone="UTC",
            first_day=first,
            last_day=end - timedelta(days=1),
            start=datetime(first.year, first.month, first.day),
            end=datetime(end.year, end.month, end.day),
        ),
        metrics=("visits",),
        dimensions=("exit_page",),
    )
    for store in (engines.duck, engines.ch):
        rows = run_query_sync(store, q).rows
        assert {r["exit_page"]: r["visits"] for r in rows} == dict(expected)


def test_a_pattern_re2_refuses_is_the_askers_error_on_both(engines: Engines) -> None:
    q = questions(5, 1)[0]
    bad = type(q)(
        site_id=q.site_id,
        period=q.period,
        metrics=("visitors",),
        filters=(Filter("matches", "page", ("(",)),),
    )
    for store in (engines.duck, engines.ch):
        with pytest.raises(InvalidRequest) as refused:
            run_query_sync(store, bad)
        assert str(refused.value).startswith("invalid regular expression '(': missing )")
