"""Geo: offline country by default; region and city from a configured .mmdb city database."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from app.config import Settings
from app.ingest.enrich import Geo, Locator
from tests.conftest import free_port, start_live_server, stop_live_server


def write_city_db(path: Path) -> None:
    """A tiny GeoIP2-City-shaped database: one network in California, one in Bavaria."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(
        IPSet(["203.0.113.0/24"]),
        {
            "country": {"iso_code": "US"},
            "subdivisions": [{"iso_code": "CA"}],
            "city": {"names": {"en": "San Francisco"}},
        },
    )
    writer.insert_network(
        IPSet(["198.51.100.0/24"]),
        {
            "country": {"iso_code": "DE"},
            "subdivisions": [{"iso_code": "BY"}],
            "city": {"names": {"en": "Munich", "de": "München"}},
        },
    )
    writer.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "FR"}})
    writer.to_db_file(str(path))


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.160", Geo("GB")),
        ("8.8.8.8", Geo("US")),
        ("2a02:8070::1", Geo("DE")),
        ("10.1.2.3", Geo()),
        ("127.0.0.1", Geo()),
        ("::1", Geo()),
        ("not an ip", Geo()),
        ("", Geo()),
    ],
)
def test_offline_country_when_no_mmdb(ip: str, expected: Geo) -> None:
    assert Locator().locate(ip) == expected


def test_mmdb_gives_region_and_city_and_falls_back_to_offline_country(tmp_path: Path) -> None:
    db = tmp_path / "city.mmdb"
    write_city_db(db)
    locator = Locator(str(db))
    try:
        assert locator.locate("203.0.113.9") == Geo("US", "US-CA", "San Francisco")
        assert locator.locate("198.51.100.1") == Geo("DE", "DE-BY", "Munich")
        assert locator.locate("192.0.2.55") == Geo("FR", None, None)
        assert locator.locate("81.2.69.160") == Geo("GB")  # not in the file: offline db
        assert locator.locate("garbage") == Geo()
    finally:
        locator.close()


def test_region_and_city_are_stored_when_geoip_db_is_configured(tmp_path: Path) -> None:
    db = tmp_path / "city.mmdb"
    write_city_db(db)
    settings = Settings(data_dir=str(tmp_path / "data"), port=free_port(), geoip_db=str(db))
    live = start_live_server(settings)
    try:
        site = live.add_site("example.com")
        with live.client(**{"X-Forwarded-For": "198.51.100.20"}) as http:
            http.post("/collect", json={"n": "pageview", "u": "https://example.com/", "s": site})
        assert live.rows("SELECT country, region, city FROM events") == [
            {"country": "DE", "region": "DE-BY", "city": "Munich"}
        ]
    finally:
        stop_live_server(live)
