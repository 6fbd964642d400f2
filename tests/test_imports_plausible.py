"""Plausible CSV imports (issue #22): imported daily aggregates kept apart from the site's own
data, added to answers only when asked (native ?with_imported=true, v2 include.imports) and
only where Plausible's rules let them answer; and the round trip of our own export.

tests/fixtures/imports/plausible/ is a folder of Plausible export tables, columns as its
importer reads them (plausible/analytics lib/plausible/imported/csv_importer.ex,
input_structures; imported_pages in the older layout with scroll_depth +
pageleave_visitors of the same file's version 7337452; the others as exports.ex writes
them). By hand, 2024-01-01 .. 2024-01-02 (site in UTC):
  visitors table  day 1: 10 visitors, 12 visits, 30 pageviews, 4 bounces, 600 s
                  day 2:  5 visitors,  6 visits,  8 pageviews, 2 bounces, 120 s
  -> visitors 15, visits 18, pageviews 38, bounce rate 6/18 = 33.3 %, duration 720/18 = 40 s
  custom events   Signup 3 visitors / 3 events (day 1), Outbound Link: Click 1 / 2 (day 2)
  -> events = pageviews + custom events = 38 + 3 + 2 = 43; by event: pageview 15 / 38
  sources         Google 6+5 = 11 visitors, 7+6 = 13 visits, 20+8 = 28 pageviews;
                  direct 4, 5, 10
  pages           / 10+5 = 15 visitors, 12+6 = 18 visits, 18+8 = 26 pageviews;
                  /docs 4, 5, 12, scroll depth 300 / 5 = 60
  locations       DE 6+5 = 11 visitors, US 4
  devices         desktop 10, mobile 5"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.imports.plausible_export import stream_zip
from app.imports.run import content_hash, delete_import, run_import
from app.imports.sources import source_for
from app.ingest.hit import Hit
from app.ingest.pipeline import Client
from app.storage import import_jobs
from tests import stats_reference as ref
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.stats_env import STORAGES
from tests.test_imports import FIXTURES, Stats, _env, cli, new_data_dir

PLAUSIBLE = FIXTURES / "plausible"
JAN = {"period": "custom", "from": "2024-01-01", "to": "2024-01-02"}
AGGREGATE = "visitors,visits,pageviews,events,bounce_rate,visit_duration"


def _get(stats: Any, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{stats.url}/api/v1/stats/{path}", params={"site_id": stats.site_id, **JAN, **params}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _rows(body: dict[str, Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in body["results"]]


def _v2(stats: Any, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{stats.url}/api/v2/query",
        json={"site_id": stats.site_id, "date_range": ["2024-01-01", "2024-01-02"], **body},
    )
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


@pytest.mark.parametrize("storage", STORAGES)
def test_plausible_import_is_added_only_when_asked_with_the_hand_computed_numbers(
    tmp_path: Path, storage: str
) -> None:
    env = _env(storage)
    data = new_data_dir(tmp_path, env)
    done = cli(
        data, "import", "plausible", str(PLAUSIBLE), "--site", "example.com", "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["summary"]) == (
        "done",
        {
            "rows_read": 15,
            "rows_imported": 15,
            "tables": {
                "custom_events": 2,
                "devices": 2,
                "locations": 3,
                "pages": 3,
                "sources": 3,
                "visitors": 2,
            },
            "days": 2,
            "first_day": "2024-01-01",
            "last_day": "2024-01-02",
            "days_overlapping_native_data": 0,
            "skipped": {},
        },
    )
    live = start_live_server(_settings(data, storage))
    try:
        _answers(live, job)
    finally:
        stop_live_server(live)


def _answers(live: Any, job: dict[str, Any]) -> None:
    svc = live.services
    site = svc.meta.sites()[0]
    stats = Stats(live.url, site.id)
    own = _get(stats, "aggregate", metrics=AGGREGATE)
    assert own["metrics"] == dict.fromkeys(AGGREGATE.split(","), 0)
    assert "imports_included" not in own.get("meta", {})
    both = _get(stats, "aggregate", metrics=AGGREGATE, with_imported="true")
    assert both["metrics"] == {
        "visitors": 15,
        "visits": 18,
        "pageviews": 38,
        "events": 43,
        "bounce_rate": 33.3,
        "visit_duration": 40,
    }
    assert both["meta"]["imports_included"] is True
    series = _get(stats, "timeseries", metrics="visitors,visits,bounce_rate,visit_duration",
                  with_imported="true")  # fmt: skip
    assert _rows(series, "date", "visitors", "visits", "bounce_rate", "visit_duration") == [
        ("2024-01-01T00:00:00.000Z", 10, 12, 33.3, 50),
        ("2024-01-02T00:00:00.000Z", 5, 6, 33.3, 20),
    ]

    def breakdown(prop: str, metrics: str = "visitors,visits,pageviews", **kw: str) -> Any:
        body = _get(stats, "breakdown", property=prop, metrics=metrics, with_imported="true", **kw)
        return _rows(body, "value", *metrics.split(","))

    assert breakdown("source") == [("Google", 11, 13, 28), (None, 4, 5, 10)]
    assert breakdown("channel", "visitors") == [("Organic Search", 11), ("Direct", 4)]
    assert breakdown("page") == [("/", 15, 18, 26), ("/docs", 4, 5, 12)]
    assert breakdown("page", "scroll_depth") == [("/docs", 60), ("/", None)]
    assert breakdown("event", "visitors,events") == [
        ("pageview", 15, 38),  # the visitors table's
        ("Signup", 3, 3),
        ("Outbound Link: Click", 1, 2),
    ]
    assert breakdown("country", "visitors") == [("DE", 11), ("US", 4)]
    assert breakdown("device", "visitors") == [("desktop", 10), ("mobile", 5)]
    # A property no imported table holds (screen): Plausible leaves imports out.
    screens = _get(stats, "breakdown", property="screen", metrics="visitors", with_imported="true")
    assert screens["results"] == []
    assert screens["meta"]["imports_included"] is False
    assert screens["meta"]["imports_skip_reason"] == "unsupported_query"
    # Filtered, over days long before the raw window (the typical imported history): the
    # site has no rolled-up day there, so its raw events are whole and the imported
    # locations table answers the rest (without imports: the window's 422, as before).
    germany = _get(stats, "aggregate", metrics="visitors", country="DE", with_imported="true")
    assert (germany["metrics"], germany["meta"]["imports_included"]) == ({"visitors": 11}, True)
    refused = httpx.get(f"{stats.url}/api/v1/stats/aggregate",
                        params={"site_id": stats.site_id, **JAN, "metrics": "visitors",
                                "country": "DE"})  # fmt: skip
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        422,
        "filtered queries are only supported inside the 90-day raw event window",
    )
    v2_germany = _v2(stats, metrics=["visitors"], filters=[["is", "visit:country", ["DE"]]],
                     include={"imports": True})  # fmt: skip
    assert v2_germany["results"] == [{"metrics": [11], "dimensions": []}]
    bad = httpx.get(f"{stats.url}/api/v1/stats/aggregate",
                    params={"site_id": stats.site_id, **JAN, "with_imported": "yes"})  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "with_imported: true or false"

    # Plausible's v2: include.imports, and its meta.
    v2 = _v2(stats, metrics=["visitors", "pageviews"], include={"imports": True})
    assert v2["results"] == [{"metrics": [15, 38], "dimensions": []}]
    assert v2["meta"]["imports_included"] is True
    google = _v2(
        stats,
        metrics=["visitors"],
        dimensions=["visit:source"],
        order_by=[["visitors", "desc"]],
        include={"imports": True},
    )
    assert google["results"] == [
        {"metrics": [11], "dimensions": ["Google"]},
        {"metrics": [4], "dimensions": ["Direct / None"]},
    ]
    screens = _v2(stats, metrics=["visitors"], dimensions=["visit:screen"],
                  include={"imports": True})  # fmt: skip
    assert screens["results"] == []
    assert {k: v for k, v in screens["meta"].items() if k.startswith("imports")} == {
        "imports_included": False,
        "imports_skip_reason": "unsupported_query",
        "imports_warning": "Imported stats are not included in the results because query"
        " parameters are not supported. For more information, see:"
        " https://plausible.io/docs/stats-api#filtering-imported-stats",
    }
    assert "imports_included" not in _v2(stats, metrics=["visitors"])["meta"]

    removed = delete_import(svc.meta, svc.events, site, import_jobs.get_job(svc.meta, job["id"]),
                            raw_days=90)  # fmt: skip
    assert removed == {"events": 0, "days": 0, "imported_rows": 15}
    after = _get(stats, "aggregate", metrics="visitors", with_imported="true")
    assert after["metrics"] == {"visitors": 0}
    assert after["meta"]["imports_skip_reason"] == "no_imported_data"
    # A rolled-up day of the site's own in the period (its raw events may be pruned): a
    # filtered question over it is the window's 422, imports asked for or not.
    svc.events.replace_rollups(site.id, [date(2024, 1, 2)], [], [(date(2024, 1, 2), 1)])
    refused = httpx.get(f"{stats.url}/api/v1/stats/aggregate",
                        params={"site_id": stats.site_id, **JAN, "metrics": "visitors",
                                "country": "DE", "with_imported": "true"})  # fmt: skip
    assert refused.status_code == 422, refused.text


def test_a_bad_plausible_table_names_file_line_and_column_and_adds_nothing(
    tmp_path: Path,
) -> None:
    data = new_data_dir(tmp_path)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "imported_visitors_20240101_20240102.csv").write_text(
        (PLAUSIBLE / "imported_visitors_20240101_20240102.csv").read_text()
    )
    (folder / "imported_devices_20240101_20240102.csv").write_text(
        "date,device,visitors,visits,visit_duration,bounces,pageviews\n"
        "2024-01-01,Desktop,10,12,600,4,30\n2024-01-02,Mobile,many,6,120,2,8\n"
    )
    bad = cli(data, "import", "plausible", str(folder), "--site", "example.com")
    assert bad.returncode == 2
    assert bad.stderr == (
        "avocet: imported_devices_20240101_20240102.csv, line 3, column 'visitors': 'many' is"
        " not valid (invalid literal for int() with base 10: 'many')\n"
    )
    (folder / "imported_devices_20240101_20240102.csv").unlink()
    (folder / "notes.csv").write_text("a,b\n")
    odd = cli(data, "import", "plausible", str(folder), "--site", "example.com")
    assert odd.stderr.startswith(
        "avocet: notes.csv: not a table of Plausible's CSV export (expected imported_<table>"
    )
    with_path = cli(data, "import", "list", "--json")
    assert [j["status"] for j in json.loads(with_path.stdout)] == ["failed", "failed"]
    from app.storage.events import EventStore

    store = EventStore(data / "events.duckdb")
    try:
        assert store.query("SELECT count(*) FROM imported_stats") == [(0,)]
        assert store.query("SELECT count(*) FROM imports") == [(0,)]
    finally:
        store.close()


def _load(svc: Any, domain: str, tz: str) -> str:
    """The generated dataset's events of one site, through the ingest pipeline's builder."""
    site = svc.meta.add_site(domain, timezone=tz)
    rows = []
    for e in ref.generate():
        if e.site != domain:
            continue
        hit = Hit(name=e.name, url=e.url, site_id=site.id, referrer=e.referrer,
                  props=tuple(e.props.items()), interactive=e.interactive,
                  engagement_ms=e.engagement_ms, scroll_depth=e.scroll_depth)  # fmt: skip
        rows.append(svc.ingest.build(hit, site, Client(e.ip, e.ua), int(e.ts.timestamp() * 1e6)))
    svc.events.append(rows)
    return str(site.id)


def _settings(data: Path, storage: str = "duckdb") -> Settings:
    return Settings(
        data_dir=str(data),
        port=free_port(),
        open_stats_on_loopback=True,
        run_jobs=False,
        storage=storage,
    )


ROUND_TRIP = [
    # Sources: visits, not visitors. Plausible's sources table has a row per (source,
    # referrer, UTM) of a day, and a visitor whose visits of one day differ in referrer is
    # one visitor in each row: its visitors add up to more (in Plausible as here).
    ("breakdown", {"property": "source", "metrics": "visits,bounce_rate,visit_duration"}),
    ("breakdown", {"property": "channel", "metrics": "visits,pageviews"}),
    ("breakdown", {"property": "utm_campaign", "metrics": "visits"}),
    ("breakdown", {"property": "page", "metrics": "visitors,pageviews"}),
    ("breakdown", {"property": "entry_page", "metrics": "visitors,visits,bounce_rate"}),
    ("breakdown", {"property": "exit_page", "metrics": "visitors,visits,visit_duration"}),
    ("breakdown", {"property": "country", "metrics": "visitors,visits,pageviews"}),
    ("breakdown", {"property": "device", "metrics": "visitors,visits"}),
    ("breakdown", {"property": "browser", "metrics": "visitors,visits,views_per_visit"}),
    ("breakdown", {"property": "os_version", "metrics": "visitors"}),
    # Events, not visitors: outbound clicks have a row per (day, link_url) (the same).
    ("breakdown", {"property": "event", "metrics": "events"}),
    ("timeseries", {"metrics": "visitors,visits,pageviews,bounce_rate,visit_duration"}),
    ("timeseries", {"metrics": "visitors,pageviews", "interval": "week"}),
    (
        "aggregate",
        {"metrics": "visitors,visits,pageviews,events,bounce_rate,visit_duration,views_per_visit"},
    ),
]


@pytest.mark.parametrize(("domain", "tz"), ref.SITES[:2])
def test_an_export_imported_into_a_fresh_data_dir_answers_the_same(
    tmp_path: Path, domain: str, tz: str
) -> None:
    """Round trip: the generated dataset's site exported in Plausible's layout, imported into
    a fresh data dir, answers its daily aggregates and breakdowns as the original does."""
    lives = []
    try:
        first = start_live_server(_settings(tmp_path / "a"))
        lives.append(first)
        site_a = _load(first.services, domain, tz)
        site = first.services.meta.sites()[0]
        days = first.services.events.query("SELECT min(day), max(day) FROM events")[0]
        archive = tmp_path / "export.zip"
        archive.write_bytes(b"".join(stream_zip(first.services.events, site, *days)))

        second = start_live_server(_settings(tmp_path / "b"))
        lives.append(second)
        svc = second.services
        fresh = svc.meta.add_site(domain, timezone=tz)
        job = import_jobs.create_job(svc.meta, fresh.id, "plausible", content_hash([archive]),
                                     [archive.name], None)  # fmt: skip
        from app.imports.csvfiles import expand_zips

        unpacked = tmp_path / "unpacked"
        unpacked.mkdir()
        done = run_import(svc.meta, svc.events, fresh, job, source_for("plausible", fresh),
                          expand_zips([archive], unpacked), raw_days=100_000)  # fmt: skip
        assert done.status == "done", done.error

        span = {"period": "custom", "from": days[0].isoformat(), "to": days[1].isoformat()}
        for path, params in ROUND_TRIP:
            want = httpx.get(f"{first.url}/api/v1/stats/{path}",
                             params={"site_id": site_a, **span, **params}).json()  # fmt: skip
            got = httpx.get(f"{second.url}/api/v1/stats/{path}",
                            params={"site_id": fresh.id, **span, **params,
                                    "with_imported": "true"}).json()  # fmt: skip
            assert got["meta"]["imports_included"] is True, (path, params)
            key = "metrics" if path == "aggregate" else "results"
            assert got[key] == want[key], (path, params)
            assert want[key], (path, params)  # the comparison is not of two empty answers
    finally:
        for live in lives:
            stop_live_server(live)
