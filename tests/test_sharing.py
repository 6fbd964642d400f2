"""Share links over real HTTP: the link, its password, its revocation and expiry, the share
API token's reach (one site's stats, its fixed filter, nothing else) and the embed's CSP.

Events (site shop.example, UTC, all within the last 20 minutes of a pinned clock):
  visitor 10.0.0.1: /blog/one, /blog/two      (one visit)
  visitor 10.0.0.2: /pricing
  visitor 10.0.0.3: /blog/one
  -> today: 3 visitors, 4 pageviews; /blog/one 2 visitors, /blog/two 1, /pricing 1.
  -> with the fixed filter page=/blog/*: 2 visitors, 3 pageviews.
Site other.example: one visitor (10.0.0.9, /) -> never readable with shop.example's link.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.headers import PAGE_CSP
from app.ingest.hit import Hit
from app.ingest.pipeline import Client, Drop
from app.storage.accounts import User
from app.storage.shares import add_share_link
from tests.accounts_fixtures import World, auth_settings
from tests.conftest import CHROME_UA, start_live_server, stop_live_server

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
VISITS = [
    ("10.0.0.1", "/blog/one", 19),
    ("10.0.0.1", "/blog/two", 18),
    ("10.0.0.2", "/pricing", 15),
    ("10.0.0.3", "/blog/one", 10),
]


@dataclass
class Shop:
    world: World
    owner: User
    admin: User
    viewer: User
    site: str
    other: str

    @property
    def url(self) -> str:
        return self.world.live.url

    def anon(self, **headers: str) -> httpx.Client:
        return self.world.client(**headers)

    def create(self, user: User | None = None, **fields: str) -> httpx.Response:
        """POST the UI's form as `user` (the owner by default); follows no redirect."""
        client = self.world.session((user or self.owner).email)
        form = {"csrf_token": client.headers["X-CSRF-Token"], **fields}
        return client.post(f"/ui/sites/{self.site}/sharing", data=form)

    def link(self, **fields: str) -> str:
        """A new link's path (/share/<token>), read back from the sharing page."""
        response = self.create(**fields)
        assert response.status_code == 303, response.text
        page = self.world.session(self.owner.email).get(response.headers["location"])
        tokens = re.findall(r"/share/([\w-]{20,})", page.text)
        assert tokens, page.text
        return f"/share/{tokens[-1]}"

    def token(self, path: str, client: httpx.Client | None = None) -> str:
        """The share API token the shared dashboard's page hands its scripts."""
        page = (client or self.anon()).get(path)
        assert page.status_code == 200, page.text
        found = JWT.findall(page.text)
        assert len(set(found)) == 1, page.text
        return found[0]

    def stats(self, token: str, path: str, **params: Any) -> httpx.Response:
        params.setdefault("site_id", self.site)
        return self.anon(Authorization=f"Bearer {token}").get(
            f"/api/v1/stats/{path}", params=params
        )


def _ingest(world: World, site_id: str, visits: list[tuple[str, str, int]]) -> None:
    svc = world.live.services
    site = svc.sites.by_id(site_id)
    assert site is not None
    rows = []
    for ip, path, minutes_ago in visits:
        hit = Hit(name="pageview", url=f"https://{site.domain}{path}", site_id=site_id)
        ts = NOW - timedelta(minutes=minutes_ago)
        row = svc.ingest.build(hit, site, Client(ip, CHROME_UA), int(ts.timestamp() * 1e6))
        assert not isinstance(row, Drop), row
        rows.append(row)
    svc.events.append(rows)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    live = start_live_server(
        auth_settings(tmp_path, run_jobs=False, auth={"login_attempts_per_account": 3})
    )
    live.services.clock = lambda: NOW
    world = World(live)
    try:
        owner = world.user("owner@example.com")
        admin = world.user("admin@example.com")
        viewer = world.user("viewer@example.com")
        site = world.site("shop.example", owner, **{admin.id: "admin", viewer.id: "viewer"})
        other = world.site("other.example", owner)
        _ingest(world, site, VISITS)
        _ingest(world, other, [("10.0.0.9", "/", 5)])
        yield Shop(world, owner, admin, viewer, site, other)
    finally:
        for client in world.clients:
            client.close()
        stop_live_server(live)


def test_share_link_shows_dashboard_signed_out_when_it_has_no_password(shop: Shop) -> None:
    path = shop.link(name="Investors")
    token = shop.token(path)
    aggregate = shop.stats(token, "aggregate", period="today", metrics="visitors,pageviews")
    assert aggregate.status_code == 200, aggregate.text
    assert aggregate.json()["metrics"] == {"visitors": 3, "pageviews": 4}
    pages = shop.stats(token, "breakdown", period="today", property="page", metrics="visitors")
    assert [(r["value"], r["visitors"]) for r in pages.json()["results"]] == [
        ("/blog/one", 2),
        ("/blog/two", 1),
        ("/pricing", 1),
    ]
    series = shop.stats(token, "timeseries", period="today", metrics="visitors", interval="hour")
    by_hour = {p["date"]: p["visitors"] for p in series.json()["results"] if p["visitors"]}
    assert by_hour == {"2026-03-10T11:00:00.000Z": 3}
    realtime = shop.stats(token, "realtime", minutes="30")
    assert realtime.json() == {"current_visitors": 3, "window_minutes": 30}
    v2 = shop.anon(Authorization=f"Bearer {token}").post(
        "/api/v2/query",
        json={"site_id": "shop.example", "metrics": ["visitors"], "date_range": "day"},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["results"] == [{"metrics": [3], "dimensions": []}]


@pytest.mark.parametrize(
    ("method", "route", "status"),
    [
        ("GET", "/api/v1/stats/aggregate?site_id={other}&period=day", 403),
        ("GET", "/api/v1/stats/realtime?site_id={other}", 403),
        ("GET", "/api/v1/analytics?site_id={site}", 401),
        ("GET", "/api/v1/sites", 401),
        ("GET", "/api/v1/sites/{site}", 401),
        ("PATCH", "/api/v1/sites/{site}", 401),
        ("GET", "/api/v1/sites/{site}/goals", 401),
        ("GET", "/api/sites/{site}/api-keys", 401),
        ("POST", "/api/sites/{site}/api-keys", 401),
        ("GET", "/api/v1/usage", 401),
        ("GET", "/api/v1/auth/me", 401),
        ("POST", "/api/v1/events", 401),
        ("GET", "/api/v1/sites/{site}/privacy/user/u1", 401),
        ("DELETE", "/api/v1/sites/{site}/privacy/user/u1", 401),
        ("POST", "/v1/projects/{site}/events", 401),
        ("GET", "/v1/projects/{site}/pageviews", 401),
        ("GET", "/api/v1/stats?site_id={site}", 401),
        ("GET", "/api/external/v1/analytics/{site}", 401),
    ],
)
def test_share_token_is_refused_when_used_beyond_its_sites_stats(
    shop: Shop, method: str, route: str, status: int
) -> None:
    token = shop.token(shop.link())
    url = route.format(site=shop.site, other=shop.other)
    response = shop.anon(Authorization=f"Bearer {token}").request(method, url, json={})
    assert response.status_code == status, response.text


def test_share_token_opens_no_settings_page_when_sent_to_the_ui(shop: Shop) -> None:
    token = shop.token(shop.link())
    client = shop.anon(Authorization=f"Bearer {token}")
    for path in ("sharing", "settings", "members", "goals"):
        response = client.get(f"/ui/sites/{shop.site}/{path}")
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login"), path


def test_fixed_filter_holds_when_the_client_asks_without_it_or_against_it(shop: Shop) -> None:
    token = shop.token(shop.link(filter_property="page", filter_value="/blog/*"))
    agg = shop.stats(token, "aggregate", period="today", metrics="visitors,pageviews")
    assert agg.json()["metrics"] == {"visitors": 2, "pageviews": 3}
    # The client's own filter narrows further; it can't widen: /pricing AND /blog/* is empty.
    narrowed = shop.stats(token, "aggregate", period="today", metrics="visitors", page="/pricing")
    assert narrowed.json()["metrics"] == {"visitors": 0}
    everything = shop.stats(token, "aggregate", period="today", metrics="visitors", page="*")
    assert everything.json()["metrics"] == {"visitors": 2}
    pages = shop.stats(token, "breakdown", period="today", property="page", metrics="visitors")
    assert [(r["value"], r["visitors"]) for r in pages.json()["results"]] == [
        ("/blog/one", 2),
        ("/blog/two", 1),
    ]
    realtime = shop.stats(token, "realtime", minutes="30")
    assert realtime.json()["current_visitors"] == 2
    v2 = shop.anon(Authorization=f"Bearer {token}").post(
        "/api/v2/query",
        json={"site_id": shop.site, "metrics": ["visitors"], "date_range": "day", "filters": []},
    )
    assert v2.json()["results"] == [{"metrics": [2], "dimensions": []}]


def test_password_is_asked_first_and_remembered_in_a_cookie_when_given(shop: Shop) -> None:
    path = shop.link(password="open sesame 42")
    client = shop.anon()
    first = client.get(path)
    assert first.status_code == 200
    assert "Password required" in first.text
    assert not JWT.search(first.text)
    wrong = client.post(path, data={"password": "not it at all"})
    assert wrong.status_code == 400
    assert "set-cookie" not in wrong.headers
    right = client.post(path, data={"password": "open sesame 42"})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert f"Path={path}" in cookie
    assert "HttpOnly" in cookie
    token = shop.token(path, client)
    agg = shop.stats(token, "aggregate", period="today", metrics="visitors")
    assert agg.json()["metrics"] == {"visitors": 3}
    # Another browser (no cookie) is asked again.
    assert not JWT.search(shop.anon().get(path).text)


def test_password_guesses_are_throttled_when_too_many(shop: Shop) -> None:
    path = shop.link(password="open sesame 42")
    client = shop.anon()
    for _ in range(3):
        assert client.post(path, data={"password": "a wrong guess"}).status_code == 400
    blocked = client.post(path, data={"password": "open sesame 42"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_link_and_its_tokens_answer_404_when_revoked(shop: Shop) -> None:
    path = shop.link(name="Temporary")
    token = shop.token(path)
    owner = shop.world.session(shop.owner.email)
    page = owner.get(f"/ui/sites/{shop.site}/sharing").text
    share_id = re.findall(r"/sharing/([0-9a-f]{16})/delete", page)[-1]
    revoked = owner.post(
        f"/ui/sites/{shop.site}/sharing/{share_id}/delete",
        data={"csrf_token": owner.headers["X-CSRF-Token"]},
    )
    assert revoked.status_code == 303
    assert shop.anon().get(path).status_code == 404
    assert shop.stats(token, "aggregate", period="today").status_code == 404
    assert shop.stats(token, "realtime").status_code == 404


def test_link_and_its_tokens_answer_404_when_expired(shop: Shop) -> None:
    path = shop.link(expires="2099-01-01")
    token = shop.token(path)
    assert shop.stats(token, "aggregate", period="today").status_code == 200
    meta = shop.world.live.services.meta
    meta.execute("UPDATE share_links SET expires_at = ?", (int(time.time()) - 1,))
    assert shop.anon().get(path).status_code == 404
    assert shop.stats(token, "aggregate", period="today").status_code == 404


def test_embed_allows_only_the_sites_and_listed_origins_to_frame_it(shop: Shop) -> None:
    path = shop.link(frame_origins="https://blog.example.org, http://localhost:8080/")
    embed = shop.anon().get(path, params={"embed": "true"})
    assert embed.status_code == 200
    default = PAGE_CSP.decode()
    assert embed.headers["content-security-policy"] == default.replace(
        "frame-ancestors 'none'",
        "frame-ancestors https://shop.example http://shop.example"
        " https://blog.example.org http://localhost:8080",
    )
    assert "x-frame-options" not in embed.headers
    plain = shop.anon().get(path)
    assert plain.headers["content-security-policy"] == default
    assert plain.headers["x-frame-options"] == "DENY"
    assert (
        "frame-ancestors 'none'" in shop.anon().get("/ui/login").headers["content-security-policy"]
    )


def test_embed_of_a_password_link_sets_the_csp_on_the_password_form_too(shop: Shop) -> None:
    path = shop.link(password="open sesame 42")
    embed = shop.anon().get(path, params={"embed": "true"})
    assert "Password required" in embed.text
    assert embed.headers["content-security-policy"].endswith(
        "frame-ancestors https://shop.example http://shop.example"
    )


def test_viewer_can_neither_create_nor_see_links_when_admin_can(shop: Shop) -> None:
    assert shop.create(shop.viewer, name="Mine").status_code == 403
    viewer = shop.world.session(shop.viewer.email)
    assert viewer.get(f"/ui/sites/{shop.site}/sharing").status_code == 403
    assert shop.world.live.services.meta.fetchall("SELECT id FROM share_links") == []
    assert shop.create(shop.admin, name="By admin").status_code == 303


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password": "short"}, "password", "at least 8"),
        ({"expires": "2020-01-01"}, "expires", "today or a later date"),
        ({"filter_property": "page"}, "filter_value", "Type the value"),
        ({"filter_property": "period", "filter_value": "7d"}, "filter_value", "Pick a property"),
        ({"frame_origins": "https://ok.example/path"}, "frame_origins", "not an origin"),
        ({"frame_origins": "javascript:alert(1)"}, "frame_origins", "not an origin"),
    ],
)
def test_link_form_names_the_field_when_input_is_bad(
    shop: Shop, fields: dict[str, str], field: str, message: str
) -> None:
    response = shop.create(**fields)
    assert response.status_code == 400
    assert re.search(rf'id="e-{field}"\s*>[^<]*{re.escape(message)}', response.text), response.text
    assert shop.world.live.services.meta.fetchall("SELECT id FROM share_links") == []


def test_unknown_token_answers_404_when_guessed(shop: Shop) -> None:
    assert shop.anon().get("/share/not-a-real-token-at-all").status_code == 404
    forged = shop.world.jwt(shop.owner.email)  # a user's JWT is not a share token
    response = shop.stats(forged, "aggregate", period="today", metrics="visitors")
    assert response.status_code == 200  # ... it is the owner's own credential
    assert shop.stats("a.b.c", "aggregate", period="today").status_code == 401


def test_password_cookie_is_partitioned_when_unlocked_inside_an_https_embed(
    tmp_path: Path,
) -> None:
    settings = auth_settings(tmp_path, run_jobs=False, auth={"cookie_secure": "always"})
    live = start_live_server(settings)
    world = World(live)
    try:
        owner = world.user("owner@example.com")
        site = world.site("shop.example", owner)
        hashed = live.services.auth.passwords.hash_sync("open sesame 42")
        link = add_share_link(
            live.services.meta, site_id=site, name="x", created_by=owner.id, password_hash=hashed
        )
        path = f"/share/{link.token}"
        client = world.client()
        embedded = client.post(path, params={"embed": "true"}, data={"password": "open sesame 42"})
        assert embedded.status_code == 303
        assert embedded.headers["location"] == f"{path}?embed=true"
        assert embedded.headers["set-cookie"].split("=", 1)[0] == "avocet_share"
        assert embedded.headers["set-cookie"].endswith(
            f"; Max-Age=604800; Path={path}; HttpOnly; Secure; SameSite=None; Partitioned"
        )
        plain = client.post(path, data={"password": "open sesame 42"})
        assert plain.headers["location"] == path
        cookie = plain.headers["set-cookie"]
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert "Partitioned" not in cookie
        assert client.get(path).headers["x-robots-tag"] == "noindex, nofollow"
    finally:
        for client in world.clients:
            client.close()
        stop_live_server(live)
