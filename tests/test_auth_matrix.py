"""Every authenticated route against every kind of caller, over real HTTP on real files."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.auth.tokens import new_api_token
from app.storage.goals import add_goal
from app.storage.keys import revoke_key
from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings
from tests.conftest import start_live_server, stop_live_server

NOT_FOUND = {"error": {"code": "not_found", "message": "site not found"}}


@dataclass
class Matrix:
    world: World
    site_a: str  # alice owns it, carol views it
    site_a2: str  # alice owns it too
    site_b: str  # bob's
    callers: dict[str, httpx.Client]

    def fresh_site(self) -> str:
        """A site alice owns and carol views, for routes that destroy their target."""
        w = self.world
        site = w.site(f"fresh-{secrets.token_hex(4)}.test", self.alice)
        w.share(site, self.carol, "viewer")
        return site

    @property
    def alice(self):  # type: ignore[no-untyped-def]
        return self.world.meta and self._alice

    def key_of_a(self) -> str:
        """Id of a fresh key of site A (for the revoke route)."""
        from app.auth.keys import create_api_key

        key, _ = create_api_key(
            self.world.meta,
            user_id=self._alice.id,
            site_id=self.site_a,
            scopes=("stats:read",),
            name="to revoke",
            expires_at=None,
        )
        return key.id


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    live = start_live_server(auth_settings(Path(tmp_path_factory.mktemp("matrix"))))
    w = World(live)
    w.user("root@example.com")  # the first user is the instance admin, who sees every site
    alice, bob, carol = (
        w.user("alice@example.com"),
        w.user("bob@example.com"),
        w.user("carol@example.com"),
    )
    w.user("dave@example.com")
    site_a, site_a2, site_b = (
        w.site("a.test", alice),
        w.site("a2.test", alice),
        w.site("b.test", bob),
    )
    w.share(site_a, carol, "viewer")
    revoked = w.key(alice, site_a, ALL_SCOPES)
    revoke_key(w.meta, w.meta.fetchone("SELECT id FROM api_keys ORDER BY rowid DESC LIMIT 1")[0])
    callers = {
        "none": w.client(),
        "malformed": w.bearer("not-a-token"),
        "unknown": w.bearer(new_api_token()[0]),
        "expired": w.bearer(w.key(alice, site_a, ALL_SCOPES, expires_at=int(time.time()) - 5)),
        "revoked": w.bearer(revoked),
        "stats_key": w.bearer(w.key(alice, site_a, ("stats:read",))),
        "events_key": w.client(**{"X-API-Key": w.key(alice, site_a, ("events:write",))}),
        "other_site_key": w.bearer(w.key(alice, site_a2, ALL_SCOPES)),
        "other_user_key": w.bearer(w.key(bob, site_b, ALL_SCOPES)),
        "all_sites_key": w.bearer(w.key(alice, None, ALL_SCOPES)),
        "viewer": w.session("carol@example.com"),
        "owner": w.session("alice@example.com"),
        "stranger": w.session("dave@example.com"),
        "jwt": w.bearer(w.jwt("alice@example.com")),
    }
    m = Matrix(w, site_a, site_a2, site_b, callers)
    m._alice, m.carol = alice, carol  # type: ignore[attr-defined]
    try:
        yield m
    finally:
        for client in w.clients:
            client.close()
        stop_live_server(live)


Request = Callable[[Matrix, httpx.Client], httpx.Response]

ROUTES: dict[str, Request] = {
    "realtime": lambda m, c: c.get("/api/v1/stats/realtime", params={"site_id": m.site_a}),
    "sites_list": lambda m, c: c.get("/api/v1/sites"),
    "sites_create": lambda m, c: c.post(
        "/api/v1/sites", json={"domain": f"new-{secrets.token_hex(4)}.test"}
    ),
    "site_get": lambda m, c: c.get(f"/api/v1/sites/{m.site_a}"),
    "site_patch": lambda m, c: c.patch(f"/api/v1/sites/{m.site_a}", json={"name": "A"}),
    "site_delete": lambda m, c: c.delete(f"/api/v1/sites/{m.fresh_site()}"),
    "goals_list": lambda m, c: c.get(f"/api/v1/sites/{m.site_a}/goals"),
    "goal_create": lambda m, c: c.post(
        f"/api/v1/sites/{m.site_a}/goals", json={"event_name": f"e{secrets.token_hex(4)}"}
    ),
    "goal_delete": lambda m, c: c.delete(
        f"/api/v1/sites/{m.site_a}/goals/"
        + add_goal(m.world.meta, m.site_a, "event", secrets.token_hex(4), "g").id
    ),
    "keys_list": lambda m, c: c.get(f"/api/sites/{m.site_a}/api-keys"),
    "key_create": lambda m, c: c.post(f"/api/sites/{m.site_a}/api-keys", json={"name": "x"}),
    "key_revoke": lambda m, c: c.delete(f"/api/sites/{m.site_a}/api-keys/{m.key_of_a()}"),
    "usage": lambda m, c: c.get("/api/v1/usage"),
    "event": lambda m, c: c.post(
        "/api/v1/events", json={"event_name": "signup", "site_id": m.site_a, "user_id": "u1"}
    ),
    "project_event": lambda m, c: c.post(
        f"/v1/projects/{m.site_a}/events", json={"event_name": "signup", "user_id": "u1"}
    ),
}

# Callers that never get past authentication: 401 on every route.
UNAUTHENTICATED = ("none", "malformed", "unknown", "expired", "revoked")

# route -> the status each authenticated caller gets.
EXPECTED: dict[str, dict[str, int]] = {
    "realtime": dict(stats_key=200, events_key=403, other_site_key=403, other_user_key=404,
                     all_sites_key=200, viewer=200, owner=200, stranger=404, jwt=200),
    "sites_list": dict(stats_key=403, events_key=403, other_site_key=200, other_user_key=200,
                       all_sites_key=200, viewer=200, owner=200, stranger=200, jwt=200),
    "sites_create": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=403,
                         all_sites_key=201, viewer=201, owner=201, stranger=201, jwt=201),
    "site_get": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                     all_sites_key=200, viewer=200, owner=200, stranger=404, jwt=200),
    "site_patch": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                       all_sites_key=200, viewer=403, owner=200, stranger=404, jwt=200),
    # 202: the deletion is a background job (GET /api/v1/deletions/{request_id}).
    "site_delete": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                        all_sites_key=202, viewer=403, owner=202, stranger=404, jwt=202),
    "goals_list": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                       all_sites_key=200, viewer=200, owner=200, stranger=404, jwt=200),
    "goal_create": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                        all_sites_key=201, viewer=403, owner=201, stranger=404, jwt=201),
    "goal_delete": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=404,
                        all_sites_key=200, viewer=403, owner=200, stranger=404, jwt=200),
    "keys_list": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=403,
                      all_sites_key=403, viewer=403, owner=200, stranger=404, jwt=403),
    "key_create": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=403,
                       all_sites_key=403, viewer=403, owner=201, stranger=404, jwt=403),
    "key_revoke": dict(stats_key=403, events_key=403, other_site_key=403, other_user_key=403,
                       all_sites_key=403, viewer=403, owner=200, stranger=404, jwt=403),
    "usage": dict(stats_key=200, events_key=200, other_site_key=200, other_user_key=200,
                  all_sites_key=200, viewer=200, owner=200, stranger=200, jwt=200),
    "event": dict(stats_key=403, events_key=202, other_site_key=403, other_user_key=404,
                  all_sites_key=202, viewer=403, owner=202, stranger=404, jwt=202),
    "project_event": dict(stats_key=403, events_key=202, other_site_key=403, other_user_key=404,
                          all_sites_key=202, viewer=403, owner=202, stranger=404, jwt=202),
}  # fmt: skip

CASES = [
    (route, caller, 401 if caller in UNAUTHENTICATED else EXPECTED[route][caller])
    for route in ROUTES
    for caller in (*UNAUTHENTICATED, *EXPECTED[route])
]


@pytest.mark.parametrize(("route", "caller", "status"), CASES)
def test_route_answers_documented_status_when_called_by_each_kind_of_caller(
    matrix: Matrix, route: str, caller: str, status: int
) -> None:
    response = ROUTES[route](matrix, matrix.callers[caller])
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"]
    body = response.text
    for other in (matrix.site_b, '"b.test"') if caller != "other_user_key" else ():
        assert other not in body  # bob's site never shows up for alice's callers
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status == 404 and route == "project_event":  # OpenAnalytics' own error envelope
        assert response.json() == {"error": "not_found", "message": "site not found"}
    elif status == 404:
        assert response.json() == NOT_FOUND
    if status < 300:
        assert response.headers["x-ratelimit-limit"]
        assert response.headers["x-usage-reset"].endswith("-01T00:00:00.000Z")


def test_invisible_site_looks_exactly_like_a_missing_one_when_caller_cannot_see_it(
    matrix: Matrix,
) -> None:
    stranger = matrix.callers["stranger"]
    for path in ("/api/v1/sites/{}", "/api/v1/sites/{}/goals", "/api/sites/{}/api-keys"):
        hidden = stranger.get(path.format(matrix.site_b))
        missing = stranger.get(path.format("doesnotexist"))
        assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
        assert hidden.json() == NOT_FOUND


def test_site_list_shows_only_covered_sites_when_key_is_bound(matrix: Matrix) -> None:
    bound = matrix.callers["other_site_key"].get("/api/v1/sites").json()
    assert [s["id"] for s in bound["sites"]] == [matrix.site_a2]
    bob = matrix.callers["other_user_key"].get("/api/v1/sites").json()
    assert [s["id"] for s in bob["sites"]] == [matrix.site_b]


def test_query_string_token_is_refused_when_sent_instead_of_header(matrix: Matrix) -> None:
    token = matrix.world.key(matrix._alice, matrix.site_a, ("stats:read",))  # type: ignore[attr-defined]
    for name in ("token", "api_key", "key"):
        response = matrix.callers["none"].get(
            "/api/v1/stats/realtime", params={"site_id": matrix.site_a, name: token}
        )
        assert response.status_code == 401
        assert "header" in response.json()["error"]["message"]


def test_cookie_write_is_refused_when_csrf_token_missing(matrix: Matrix) -> None:
    owner = matrix.callers["owner"]
    headers = {k: v for k, v in owner.headers.items() if k.lower() != "x-csrf-token"}
    bare = httpx.Client(base_url=str(owner.base_url), headers=headers, cookies=owner.cookies)
    with bare:
        response = bare.patch(f"/api/v1/sites/{matrix.site_a}", json={"name": "nope"})
        wrong = bare.patch(
            f"/api/v1/sites/{matrix.site_a}", json={"name": "nope"}, headers={"X-CSRF-Token": "x"}
        )
        read = bare.get(f"/api/v1/sites/{matrix.site_a}")
    assert response.status_code == wrong.status_code == 403
    assert read.status_code == 200
