""" "Verify installation" says why a site's hits were dropped (counts, never an address or a
user agent), and warns when every hit comes from one private address (a reverse proxy whose
address is not trusted, the usual Docker mistake) — on the page's poll and in the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.ingest.diagnostics import WINDOW_HITS, DropLog, ProxySymptom
from tests.accounts_fixtures import World, auth_settings
from tests.conftest import CHROME_UA, start_live_server, stop_live_server
from tests.test_ui_forms import sign_in_ui

OWNER = "owner@example.com"
CURL_UA = "curl/8.5.0"


class Setup:
    def __init__(self, world: World, ui: httpx.Client, site_id: str, other_id: str) -> None:
        self.world, self.ui, self.site_id, self.other_id = world, ui, site_id, other_id

    def hit(self, body: dict[str, object], ua: str = CHROME_UA, **headers: str) -> None:
        answer = httpx.post(
            f"{self.world.live.url}/collect", json=body, headers={"User-Agent": ua, **headers}
        )
        assert answer.status_code == 204

    def verify(self, site_id: str | None = None) -> dict[str, object]:
        answer = self.ui.get(f"/ui/sites/{site_id or self.site_id}/recent")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    # Five hits a minute per client: the sixth is rate limited.
    live = start_live_server(auth_settings(tmp_path, limits={"collect_ip_per_minute": 5}))
    world = World(live)
    owner = world.user(OWNER)
    site_id = world.site("shop.test", owner)
    other_id = world.site("other.test", owner)
    ui, _ = sign_in_ui(world, OWNER)
    try:
        yield Setup(world, ui, site_id, other_id)
    finally:
        ui.close()
        stop_live_server(live)


def test_verify_lists_why_hits_were_dropped_when_they_were(setup: Setup) -> None:
    site = setup.site_id
    before = int(time.time())
    setup.hit({"n": "pageview", "u": "https://shop.test/", "s": site}, ua=CURL_UA)  # bot
    setup.hit({"n": "pageview", "u": "https://shop.test/", "s": "typo-id"})  # unknown site
    setup.hit({"n": "pageview", "u": "https://shop.test/", "d": "www.shop.tst"})  # same
    setup.hit({"n": "pageview", "u": "file:///home/me/index.html", "s": site})  # invalid
    setup.hit({"n": "pageview", "u": "https://shop.test/ok", "s": site})  # stored
    setup.hit({"n": "pageview", "u": "https://shop.test/late", "s": site})  # rate limited
    answer = setup.verify()
    assert [e["path"] for e in answer["events"]] == ["/ok"]  # type: ignore[index]
    dropped = answer["dropped"]
    assert isinstance(dropped, list)
    for row in dropped:
        assert before <= row.pop("last_at") <= int(time.time())
    assert sorted(dropped, key=lambda r: r["reason"]) == [
        {
            "reason": "bot",
            "count": 1,
            "explanation": "sent by a bot or a command-line client (its User-Agent);"
            " a browser's counts",
        },
        {
            "reason": "invalid",
            "count": 1,
            "explanation": "the page URL is not http(s) (e.g. file:), or the body could not"
            " be read",
        },
        {
            "reason": "rate_limited",
            "count": 1,
            "explanation": "over the per-visitor or per-site rate limit (limits.collect_*)",
        },
        {
            "reason": "unknown_site",
            "count": 2,
            "explanation": "from a page on this domain, naming a site id or domain that does"
            " not exist (check data-site / data-domain in the snippet)",
        },
    ]
    assert answer["warnings"] == []
    # Counts only: nothing about who sent them; and another site sees none of it.
    text = setup.ui.get(f"/ui/sites/{site}/recent").text
    assert "curl" not in text and "127.0.0.1" not in text
    none = {"ip": 0, "hostname": 0, "page": 0, "country": 0}
    assert setup.verify(setup.other_id) == {
        "events": [],
        "dropped": [],
        "warnings": [],
        "excluded": none,
    }


def test_verify_page_has_the_localhost_option_and_the_drop_table(setup: Setup) -> None:
    page = setup.ui.get(f"/ui/sites/{setup.site_id}/install").text
    assert '<input type="checkbox" data-attr="data-allow-local">' in page
    assert '<table id="dropped">' in page
    assert "Avocet ignores pageview: local page" in page


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_verify_warns_when_every_hit_comes_from_one_private_address(tmp_path: Path) -> None:
    live = start_live_server(auth_settings(tmp_path))
    world = World(live)
    site_id = world.site("shop.test", world.user(OWNER))
    ui, _ = sign_in_ui(world, OWNER)
    body = {"n": "pageview", "u": "https://shop.test/", "s": site_id}
    try:
        with httpx.Client(base_url=live.url, headers={"User-Agent": CHROME_UA}) as http:
            # The proxy's address as the client's: Caddy on a compose network, not trusted.
            logged = Records()
            logging.getLogger("avocet.ingest").addHandler(logged)
            try:
                for _ in range(WINDOW_HITS):
                    http.post("/collect", json=body, headers={"X-Forwarded-For": "172.18.0.3"})
            finally:
                logging.getLogger("avocet.ingest").removeHandler(logged)
            warnings = ui.get(f"/ui/sites/{site_id}/recent").json()["warnings"]
            assert warnings == [
                f"{WINDOW_HITS} of the last {WINDOW_HITS} tracking hits came from one private"
                " address (in 172.16.0.0/12): every visitor looks like one, with no country."
                " A reverse proxy (e.g. on Docker's network) whose address is not trusted?"
                ' Add its network to trusted_proxies, e.g. AVOCET_TRUSTED_PROXIES="172.16.0.0/12",'
                " and make it send X-Forwarded-For."
            ]
            assert logged.messages == warnings
            assert "172.18.0.3" not in warnings[0]  # the range is named, never the address
            # Fixed (the proxy trusted, real addresses arrive): the next window clears it.
            for n in range(WINDOW_HITS):
                ip = f"203.0.113.{n % 250}"
                http.post("/collect", json=body, headers={"X-Forwarded-For": ip})
            assert ui.get(f"/ui/sites/{site_id}/recent").json()["warnings"] == []
    finally:
        ui.close()
        stop_live_server(live)


@pytest.mark.parametrize(
    ("addresses", "warned"),
    [
        (["10.0.0.7"] * WINDOW_HITS, True),
        (["fd00::7"] * WINDOW_HITS, True),
        (["127.0.0.1"] * WINDOW_HITS, False),  # a local proxy is trusted by default
        (["192.168.1.9"] * (WINDOW_HITS - 25) + ["198.51.100.4"] * 25, False),  # 87.5 %
        (["192.168.1.9"] * (WINDOW_HITS - 20) + ["198.51.100.4"] * 20, True),  # 90 %
        ([f"192.168.1.{n % 200}" for n in range(WINDOW_HITS)], False),  # an office LAN
        (["not an address"] * WINDOW_HITS, False),
    ],
)
def test_proxy_symptom_needs_one_private_address_for_most_hits(
    addresses: list[str], warned: bool
) -> None:
    symptom = ProxySymptom()
    for ip in addresses[:-1]:
        symptom.observe(ip)
    assert symptom.warning is None  # judged once a window is full
    symptom.observe(addresses[-1])
    assert (symptom.warning is not None) == warned


def test_drop_log_keeps_counts_and_bounded_reasons_when_flooded() -> None:
    log = DropLog()
    for n in range(100):
        log.count("s1", f"reason{n}")
    log.count("s1", "reason0")
    rows = log.of("s1")
    assert len(rows) == 16
    assert {r.reason: r.count for r in rows}["reason0"] == 2
    assert log.of("s2") == []


def test_the_public_address_shortcut_never_skips_a_private_address() -> None:
    """The symptom skips the parse for IPv4 addresses whose first octet starts no private
    network: checked against ipaddress over the first and last address of every network it
    calls private, and every first octet."""
    import ipaddress

    private = [
        str(address)
        for network in ipaddress._IPv4Constants._private_networks  # type: ignore[attr-defined]
        for address in (network.network_address, network.broadcast_address)
        if not address.is_loopback
    ]
    assert len(private) >= 20
    for ip in private:
        symptom = ProxySymptom()
        symptom._match(ip)
        assert symptom._hits == 1, ip
    for octet in range(256):
        ip = f"{octet}.16.0.1"
        symptom = ProxySymptom()
        symptom._match(ip)
        address = ipaddress.ip_address(ip)
        assert symptom._hits == int(address.is_private and not address.is_loopback), ip
