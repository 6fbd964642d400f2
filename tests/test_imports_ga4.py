"""GA4 imports (issue #22): the BigQuery export's daily events_YYYYMMDD tables, one as
newline-delimited JSON (INT64 written as strings, as BigQuery's JSON export does) and one as
Parquet (written here from the same rows with the export's column types), through the CLI
and the API; the stats API answers the hand-computed numbers.

tests/fixtures/ga4/events_2025030{1,2}.json follow Google's schema documentation ("[GA4]
BigQuery Export schema", https://support.google.com/analytics/answer/7029846 =
https://developers.google.com/analytics/bigquery/event-schema): event_date,
event_timestamp (UTC microseconds), event_name, event_params [{key, value: {string_value,
int_value, float_value, double_value}}], user_pseudo_id, device {category,
operating_system, operating_system_version, web_info {browser, browser_version}}, geo
{country (a name), region, city}, traffic_source, collected_traffic_source
{manual_source, manual_medium...}, ecommerce {purchase_revenue, purchase_revenue_in_usd...}.

By hand (site in UTC; user_pseudo_id = the visitor, ga_session_id = the visit):
  2025-03-01  U1 visit 1001: session_start + first_visit (skipped), 10:00 page_view / from
              www.google.com, 10:02 scroll {percent_scrolled 90}, 10:04 page_view /pricing,
              10:04:30 user_engagement (skipped), 10:05 purchase 59.5 EUR {transaction_id
              T1} -> 300 s, no bounce; Windows/Chrome desktop, United States, New York
              U2 visit 2001: 11:00 /blog?utm_source=newsletter&utm_medium=email -> bounce;
              iOS/Safari mobile, Germany
              U1 visit 1002: 18:00 /blog, collected_traffic_source newsletter/email ->
              bounce; 18:30 app_update without page_location -> skipped
  2025-03-02  U3 visit 3001: 09:00 /docs, 09:00:45 file_download {file_name guide.pdf,
              file_extension pdf}, 09:01:30 /docs/install -> 90 s; Android/Samsung
              Internet tablet, Türkiye
              U2 visit 2002: 20:00 /pricing -> bounce
  visitors 2 + 2 = 4, visits 5, pageviews 7, events 10 (7 + scroll, purchase,
  file_download), bounce rate 3/5 = 60 %, visit duration (300+0+0+90+0)/5 = 78 s;
  rows read 14: 10 imported, 3 GA4 bookkeeping events and 1 without a page skipped."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.accounts_fixtures import world_fixture  # noqa: F401
from tests.test_imports import _env, cli, new_data_dir
from tests.test_imports_umami import _count_rows, stats_of  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "ga4"
DAY1 = FIXTURES / "events_20250301.json"
DAY2 = FIXTURES / "events_20250302.json"
AGGREGATE = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
SUMMARY = {
    "rows_read": 14,
    "events_imported": 10,
    "sessions": 5,
    "days": 2,
    "first_day": "2025-03-01",
    "last_day": "2025-03-02",
    "days_as_rollups": 0,
    "days_overlapping_native_data": 0,
    "skipped": {
        "GA4's session_start, first_visit and user_engagement (not actions)": 3,
        "no page_location (not a web page's event)": 1,
    },
}

# The export's types for the columns written (BigQuery: INT64, FLOAT64, STRING, RECORD).
VALUE = pa.struct(
    [
        ("string_value", pa.string()),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("double_value", pa.float64()),
    ]
)
SCHEMA = pa.schema(
    [
        ("event_date", pa.string()),
        ("event_timestamp", pa.int64()),
        ("event_name", pa.string()),
        ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", VALUE)]))),
        ("user_pseudo_id", pa.string()),
        (
            "device",
            pa.struct(
                [
                    ("category", pa.string()),
                    ("operating_system", pa.string()),
                    ("operating_system_version", pa.string()),
                    ("language", pa.string()),
                    (
                        "web_info",
                        pa.struct(
                            [
                                ("browser", pa.string()),
                                ("browser_version", pa.string()),
                                ("hostname", pa.string()),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        (
            "geo",
            pa.struct([("country", pa.string()), ("region", pa.string()), ("city", pa.string())]),
        ),
        (
            "collected_traffic_source",
            pa.struct([("manual_source", pa.string()), ("manual_medium", pa.string())]),
        ),
        (
            "ecommerce",
            pa.struct(
                [("purchase_revenue", pa.float64()), ("purchase_revenue_in_usd", pa.float64())]
            ),
        ),
    ]
)


def to_parquet(source: Path, target: Path) -> Path:
    """The JSON export's rows as the Parquet export has them (INT64 as integers)."""
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    for row in rows:
        row["event_timestamp"] = int(row["event_timestamp"])
        for param in row["event_params"]:
            value = param["value"]
            if value["int_value"] is not None:
                value["int_value"] = int(value["int_value"])
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), target)
    return target


def assert_hand_computed(stats: Any) -> None:
    assert stats.get("aggregate", metrics=AGGREGATE)["metrics"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 7,
        "events": 10,
        "bounce_rate": 60.0,
        "visit_duration": 78,
    }
    series = stats.get("timeseries", metrics="visitors,visits,pageviews,bounce_rate,visit_duration")
    assert [tuple(r.values()) for r in series["results"]] == [
        ("2025-03-01T00:00:00.000Z", 2, 3, 4, 66.7, 100),
        ("2025-03-02T00:00:00.000Z", 2, 2, 3, 50.0, 45),
    ]
    assert sorted(stats.breakdown("source"), key=str) == [
        ("Google", 1, 1, 2),
        ("newsletter", 2, 2, 2),
        (None, 2, 2, 3),
    ]
    assert sorted(stats.breakdown("page"), key=str) == [
        ("/", 1, 1, 1),
        ("/blog", 2, 2, 2),
        ("/docs", 1, 1, 1),
        ("/docs/install", 1, 1, 1),
        ("/pricing", 2, 2, 2),
    ]
    assert sorted(stats.breakdown("country"), key=str) == [
        ("DE", 2, 2, 2),
        ("TR", 1, 1, 2),
        ("US", 1, 2, 3),
    ]
    assert sorted(stats.breakdown("device"), key=str) == [
        ("desktop", 1, 2, 3),
        ("mobile", 2, 2, 2),
        ("tablet", 1, 1, 2),
    ]
    assert sorted(stats.breakdown("browser"), key=str) == [
        ("Chrome", 1, 2, 3),
        ("Safari", 2, 2, 2),
        ("Samsung Browser", 1, 1, 2),
    ]
    assert sorted(stats.breakdown("os"), key=str) == [
        ("Android", 1, 1, 2),
        ("Windows", 1, 2, 3),
        ("iOS", 2, 2, 2),
    ]
    versions = stats.get("breakdown", property="browser_version", metrics="visitors")["results"]
    assert sorted((r["value"], r["visitors"]) for r in versions) == [
        ("120.0", 1),
        ("17.1", 2),
        ("23.0", 1),
    ]
    assert sorted(stats.breakdown("event"), key=str) == [
        ("file_download", 1, 1, 0),
        ("pageview", 4, 5, 7),
        ("purchase", 1, 1, 0),
        ("scroll", 1, 1, 0),
    ]
    assert sorted(stats.breakdown("utm_medium"), key=str) == [("email", 2, 2, 2), (None, 3, 3, 5)]
    for prop, expected in (
        ("percent_scrolled", [("90", 1)]),
        ("transaction_id", [("T1", 1)]),
        ("file_name", [("guide.pdf", 1)]),
    ):
        rows = stats.get("breakdown", property=f"prop:{prop}", metrics="events")["results"]
        assert [(r["value"], r["events"]) for r in rows if r["value"]] == expected, prop
    revenue = stats.get("breakdown", property="currency", metrics="revenue,events")["results"]
    assert sorted((r["value"] or "", r["revenue"], r["events"]) for r in revenue) == [
        ("", 0.0, 9),
        ("EUR", 59.5, 1),
    ]
    cities = stats.get("breakdown", property="city", metrics="visitors", country="US")["results"]
    assert [(r["value"], r["visitors"]) for r in cities] == [("New York", 1)]


def test_ga4_json_and_parquet_import_answers_the_hand_computed_numbers(
    tmp_path: Path,
    stats_of: Any,  # noqa: F811
) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    parquet = to_parquet(DAY2, tmp_path / "events_20250302.parquet")
    args = ["import", "ga4", str(DAY1), str(parquet), "--site", "example.com", "--json"]
    done = cli(data, *args, env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["summary"]) == ("done", SUMMARY)
    again = json.loads(cli(data, *args, env=env).stdout)
    assert (again["status"], again["summary"]["duplicate_of"]) == ("duplicate", job["id"])
    assert_hand_computed(stats_of(data))


def test_ga4_json_only_delete_removes_exactly_it_then_it_imports_again(
    tmp_path: Path,
    stats_of: Any,  # noqa: F811
) -> None:
    data = new_data_dir(tmp_path)
    env = {**_env(), "AVOCET_RAW_RETENTION_DAYS": "100000"}
    before = _count_rows(data)
    args = ["import", "ga4", str(DAY1), str(DAY2), "--site", "example.com", "--json"]
    job = json.loads(cli(data, *args, env=env).stdout)
    assert (job["status"], job["summary"]) == ("done", SUMMARY)
    gone = cli(data, "import", "delete", job["id"], "--json", env=env)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["deleted"] == {"events": 10, "days": 2}
    assert _count_rows(data) == before
    # Deleted, the same files import again (not a duplicate) and answer the same.
    again = json.loads(cli(data, *args, env=env).stdout)
    assert (again["status"], again["summary"]) == ("done", SUMMARY)
    assert_hand_computed(stats_of(data))


def test_ga4_bad_rows_name_file_line_and_column_and_add_nothing(tmp_path: Path) -> None:
    data = new_data_dir(tmp_path)
    env = _env()
    before = _count_rows(data)
    lines = DAY1.read_text().splitlines()
    bad_ts = tmp_path / "events_20250301.json"
    bad_ts.write_text(
        "\n".join([*lines[:4], lines[4].replace('"event_timestamp":"', '"event_timestamp":"x')])
    )
    refused = cli(data, "import", "ga4", str(DAY2), str(bad_ts), "--site", "example.com", env=env)
    assert refused.returncode == 2
    assert refused.stderr == (
        "avocet: events_20250301.json, line 5, column 'event_timestamp': 'x1740823440000000'"
        " is not an integer\n"
    )
    not_json = tmp_path / "events_20250303.json"
    not_json.write_text(lines[0] + "\n{oops\n")
    refused = cli(data, "import", "ga4", str(not_json), "--site", "example.com", env=env)
    assert refused.stderr == (
        "avocet: events_20250303.json, line 2: not a JSON object (Expecting property name"
        " enclosed in double quotes at character 2)\n"
    )
    no_user = tmp_path / "events.parquet"
    table = pa.Table.from_pylist([{"event_timestamp": 1, "event_name": "page_view"}])
    pq.write_table(table, no_user)
    refused = cli(data, "import", "ga4", str(no_user), "--site", "example.com", env=env)
    assert refused.stderr == (
        "avocet: events.parquet, column 'user_pseudo_id': not a GA4 events_YYYYMMDD table:"
        " the column is missing\n"
    )
    assert _count_rows(data) == before
    listed = json.loads(cli(data, "import", "list", "--json", env=env).stdout)
    assert [j["status"] for j in listed] == ["failed", "failed", "failed"]


def upload(world: Any, source: str, files: list[Path], **fields: str) -> dict[str, Any]:
    """POST the files to the site's imports as an owner's API key; the finished job and
    the range's aggregate as the stats API answers it."""
    owner = world.user("owner@example.com", admin=True)
    site_id = world.site("example.com", owner)
    http = world.bearer(world.key(owner, site_id, ("sites:read", "sites:write", "stats:read")))
    handles = [p.open("rb") for p in files]
    try:
        started = http.post(
            f"/api/v1/sites/{site_id}/imports",
            data={"source": source, **fields},
            files=[("file", (p.name, h)) for p, h in zip(files, handles, strict=True)],
        )
    finally:
        for h in handles:
            h.close()
    assert started.status_code == 202, started.text
    assert (started.json()["source"], started.json()["status"]) == (source, "queued")
    for _ in range(200):
        job: dict[str, Any] = http.get(
            f"/api/v1/sites/{site_id}/imports/{started.json()['id']}"
        ).json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    metrics = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
    answer = http.get(
        "/api/v1/stats/aggregate",
        params={"site_id": site_id, "period": "custom", "from": "2025-03-01",
                "to": "2025-03-02", "metrics": metrics},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {"job": job, "aggregate": answer.json()["metrics"]}


def test_ga4_upload_through_the_api(world: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parquet = to_parquet(DAY2, Path(tmp) / "events_20250302.parquet")
        done = upload(world, "ga4", [DAY1, parquet])
    assert (done["job"]["status"], done["job"]["files"]) == (
        "done",
        ["events_20250301.json", "events_20250302.parquet"],
    )
    assert done["job"]["summary"] == {**SUMMARY, "days_as_rollups": 2}  # past the 90 raw days
    assert done["aggregate"] == {
        "visitors": 4,
        "visits": 5,
        "pageviews": 7,
        "events": 10,
        "bounce_rate": 60.0,
        "visit_duration": 78,
    }


def test_ga4_parquet_rows_without_params_or_device_are_skipped_not_crashed(
    tmp_path: Path,
) -> None:
    from collections import Counter

    from app.imports import ga4

    path = to_parquet(DAY2, tmp_path / "events.parquet")
    table = pq.read_table(path)
    nulls = table.slice(0, 1).to_pylist()[0] | {"event_params": None, "device": None}
    pq.write_table(pa.Table.from_pylist([nulls, *table.slice(1).to_pylist()], SCHEMA), path)
    skipped: Counter[str] = Counter()
    from app.imports.build import Batch

    records = [
        r
        for got in ga4.source("example.com").read([path], skipped)
        for r in (got.records() if isinstance(got, Batch) else [got])
    ]
    assert skipped == {"no page_location (not a web page's event)": 1}
    assert [(r.name, r.url, r.agent and r.agent.browser) for r in records] == [
        ("file_download", "https://example.com/docs", "Samsung Browser"),
        ("pageview", "https://example.com/docs/install", "Samsung Browser"),
        ("pageview", "https://example.com/pricing", "Safari"),
    ]
    assert records[0].props == (("file_extension", "pdf"), ("file_name", "guide.pdf"))
