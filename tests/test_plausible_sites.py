"""Plausible's Sites API at /plausible/api/v1/sites: every example of Plausible's Sites API
docs (https://plausible.io/docs/sites-api, sent as its curl examples send them: multipart
`-F` fields, or JSON) answers with the documented shape; errors in the words of Plausible's
external_sites_controller.ex."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.storage.accounts import User
from tests.accounts_fixtures import World, auth_settings
from tests.conftest import start_live_server, stop_live_server

MISSING_KEY = "Missing API key. Please use a valid Plausible API key as a Bearer Token."
INVALID_KEY = (
    "Invalid API key. Please make sure you're using a valid API key with access to the"
    " resource you've requested."
)


class Sites:
    def __init__(self, world: World, owner: User, token: str, read_token: str, stats: str):
        self.world, self.owner = world, owner
        self.token, self.read_token, self.stats_token = token, read_token, stats
        self.url = f"{world.live.url}/plausible/api/v1/sites"

    def call(
        self, method: str, path: str = "", token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def form(self, method: str, path: str = "", **fields: str) -> Any:
        """As the docs' curl -F examples: multipart/form-data fields."""
        files = {k: (None, v) for k, v in fields.items()}
        response = self.call(method, path, files=files)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"}
        return str(response.json()["error"])


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    live = start_live_server(auth_settings(tmp_path_factory.mktemp("sites"), run_jobs=False))
    world = World(live)
    owner = world.user("owner@example.com")
    stranger = world.user("stranger@example.com")
    world.site("theirs.example", stranger)
    token = world.key(owner, None, ("sites:read", "sites:write", "stats:read"))
    read_token = world.key(owner, None, ("sites:read",))
    stats_token = world.key(owner, None, ("stats:read",))
    try:
        yield Sites(world, owner, token, read_token, stats_token)
    finally:
        stop_live_server(live)


def test_site_lifecycle_as_the_docs_curl_examples_send_it(sites: Sites) -> None:
    # POST /api/v1/sites -F 'domain="test-domain.com"' -F 'timezone="Europe/London"'
    created = sites.form("POST", domain="test-domain.com", timezone="Europe/London")
    config = created.pop("tracker_script_configuration")
    assert created == {
        "domain": "test-domain.com",
        "timezone": "Europe/London",
        "custom_properties": [],
    }
    assert config["outbound_links"] is True and config["hash_based_routing"] is False
    # GET /api/v1/sites/test-domain.com
    got = sites.call("GET", "/test-domain.com").json()
    assert {k: got[k] for k in ("domain", "timezone", "custom_properties")} == created
    # GET /api/v1/sites: {"sites": [{domain, timezone}], "meta": {after, before, limit}}
    listed = sites.call("GET").json()
    assert {"domain": "test-domain.com", "timezone": "Europe/London"} in listed["sites"]
    assert listed["meta"] == {"after": None, "before": None, "limit": 100}
    assert all(s["domain"] != "theirs.example" for s in listed["sites"])
    # PUT /api/v1/sites/test-domain.com -F 'domain="new-domain.com"'
    renamed = sites.form("PUT", "/test-domain.com", domain="new-domain.com")
    assert renamed["domain"] == "new-domain.com"
    # DELETE /api/v1/sites/new-domain.com
    assert sites.call("DELETE", "/new-domain.com").json() == {"deleted": True}
    gone = sites.call("GET", "/new-domain.com")
    assert sites.error(gone, 404) == "Site could not be found"


def test_shared_links_goals_and_custom_props_as_documented(sites: Sites) -> None:
    sites.form("POST", domain="shop.example")
    # PUT /api/v1/sites/shared-links -F site_id -F name: find or create
    link = sites.form("PUT", "/shared-links", site_id="shop.example", name="Wordpress")
    assert set(link) == {"name", "url"} and link["name"] == "Wordpress"
    assert link["url"].startswith(f"{sites.world.live.settings.base_url}/share/")
    again = sites.form("PUT", "/shared-links", site_id="shop.example", name="Wordpress")
    assert again == link
    assert httpx.get(link["url"], timeout=30).status_code == 200
    # PUT /api/v1/sites/goals -F site_id -F goal_type="event" -F event_name="Signup"
    goal = sites.form(
        "PUT", "/goals", site_id="shop.example", goal_type="event", event_name="Signup"
    )
    assert goal == {
        "domain": "shop.example",
        "id": goal["id"],
        "display_name": "Signup",
        "goal_type": "event",
        "event_name": "Signup",
        "page_path": None,
    }
    same = sites.form(
        "PUT", "/goals", site_id="shop.example", goal_type="event", event_name="Signup"
    )
    assert same["id"] == goal["id"]
    page = sites.form(
        "PUT", "/goals", site_id="shop.example", goal_type="page", page_path="/register"
    )
    assert (page["display_name"], page["page_path"]) == ("Visit /register", "/register")
    # GET /api/v1/sites/goals?site_id=...
    listed = sites.call("GET", "/goals", params={"site_id": "shop.example"}).json()
    assert listed == {
        "goals": [
            {
                "id": goal["id"],
                "display_name": "Signup",
                "goal_type": "event",
                "event_name": "Signup",
                "page_path": None,
            },
            {
                "id": page["id"],
                "display_name": "Visit /register",
                "goal_type": "page",
                "event_name": None,
                "page_path": "/register",
            },
        ],
        "meta": {"after": None, "before": None, "limit": 100},
    }
    # DELETE /api/v1/sites/goals/:goal_id -F site_id
    assert sites.form("DELETE", f"/goals/{page['id']}", site_id="shop.example") == {"deleted": True}
    missing = sites.call(
        "DELETE", f"/goals/{page['id']}", files={"site_id": (None, "shop.example")}
    )
    assert sites.error(missing, 404) == "Goal could not be found"
    # custom properties: PUT (idempotent), GET, DELETE
    for _ in range(2):
        created = sites.form("PUT", "/custom-props", site_id="shop.example", property="title")
        assert created == {"created": True}
    sites.form("PUT", "/custom-props", site_id="shop.example", property="author")
    props = sites.call("GET", "/custom-props", params={"site_id": "shop.example"}).json()
    assert props == {"custom_properties": [{"property": "title"}, {"property": "author"}]}
    assert sites.call("GET", "/shop.example").json()["custom_properties"] == ["title", "author"]
    deleted = sites.call("DELETE", "/custom-props/title", params={"site_id": "shop.example"})
    assert deleted.json() == {"deleted": True}
    props = sites.call("GET", "/custom-props", params={"site_id": "shop.example"}).json()
    assert props == {"custom_properties": [{"property": "author"}]}


def test_json_bodies_work_like_form_fields(sites: Sites) -> None:
    created = sites.call("POST", json={"domain": "json.example", "timezone": "Europe/Tallinn"})
    assert created.status_code == 200, created.text
    assert created.json()["timezone"] == "Europe/Tallinn"
    goal = sites.call(
        "PUT", "/goals", json={"site_id": "json.example", "goal_type": "event", "event_name": "Buy"}
    )
    assert goal.json()["event_name"] == "Buy"


def test_goal_made_by_the_sites_api_filters_stats_v1(sites: Sites) -> None:
    sites.form("POST", domain="goals.example")
    sites.form("PUT", "/goals", site_id="goals.example", goal_type="event", event_name="Signup")
    response = httpx.get(
        f"{sites.world.live.url}/plausible/api/v1/stats/aggregate",
        params={"site_id": "goals.example", "filters": "event:goal==Signup"},
        headers={"Authorization": f"Bearer {sites.token}"},
        timeout=30,
    )
    assert response.json() == {"results": {"visitors": {"value": 0}}}


def test_refusals_in_plausibles_words(sites: Sites) -> None:
    bare = httpx.get(sites.url, timeout=30)
    assert sites.error(bare, 401) == MISSING_KEY
    assert sites.error(sites.call("GET", token="nope"), 401) == INVALID_KEY
    # a stats-only key can't use the Sites API; a sites:read key can't change anything
    assert sites.error(sites.call("GET", token=sites.stats_token), 401) == INVALID_KEY
    write = sites.call("POST", token=sites.read_token, json={"domain": "x.example"})
    assert sites.error(write, 401) == INVALID_KEY
    assert sites.error(sites.call("PUT", "/goals", json={"goal_type": "event"}), 400) == (
        "Parameter `site_id` is required to create a goal"
    )
    assert sites.error(sites.call("PUT", "/goals", json={"site_id": "shop.example"}), 400) == (
        "Parameter `goal_type` is required to create a goal"
    )
    no_name = sites.call("PUT", "/shared-links", json={"site_id": "shop.example"})
    assert sites.error(no_name, 400) == "Parameter `name` is required to create a shared link"
    assert sites.error(sites.call("DELETE", "/goals/1", json={}), 400) == (
        "Parameter `site_id` is required to delete a goal"
    )
    theirs = sites.call("GET", "/theirs.example")
    assert sites.error(theirs, 404) == "Site could not be found"
    goal = sites.call(
        "PUT", "/goals", json={"site_id": "theirs.example", "goal_type": "event", "event_name": "A"}
    )
    assert sites.error(goal, 404) == "Site could not be found"
    sites.form("POST", domain="taken.example")
    taken = sites.call("POST", json={"domain": "taken.example"})
    assert sites.error(taken, 400).startswith("domain: This domain has already been taken.")
    blank = sites.call("POST", json={"timezone": "Etc/UTC"})
    assert sites.error(blank, 400) == "domain: can't be blank"
    nothing = sites.call("PUT", "/taken.example", json={})
    assert sites.error(nothing, 400) == (
        "Payload must contain at least one of the parameters 'domain',"
        " 'tracker_script_configuration'"
    )


def test_teams_and_guests_answer_that_avocet_has_none(sites: Sites) -> None:
    with_team = sites.call("GET", params={"team_id": "abc"})
    assert "Avocet has no teams" in sites.error(with_team, 400)
    create = sites.call("POST", json={"domain": "team.example", "team_id": "abc"})
    assert "Avocet has no teams" in sites.error(create, 400)
    assert "Avocet has no teams" in sites.error(sites.call("GET", "/teams"), 404)
    guests = sites.call("GET", "/guests", params={"site_id": "shop.example"})
    assert "no guests endpoints" in sites.error(guests, 501)


def test_listing_pages_with_cursors(sites: Sites) -> None:
    for n in range(3):
        sites.form("POST", domain=f"page{n}.example")
    first = sites.call("GET", params={"limit": "2"}).json()
    assert len(first["sites"]) == 2 and first["meta"]["after"] is not None
    rest = sites.call("GET", params={"limit": "1000", "after": first["meta"]["after"]}).json()
    everything = sites.call("GET").json()["sites"]
    assert first["sites"] + rest["sites"] == everything
    assert rest["meta"]["after"] is None and rest["meta"]["before"] is not None


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "", {"json": ["domain", "x.example"]}),
        ("PUT", "/goals", {"json": {"site_id": 5, "goal_type": "event"}}),
        ("PUT", "/goals", {"json": {"site_id": "nope.example", "goal_type": "visit"}}),
        ("PUT", "/custom-props", {"json": {"site_id": "shop.example", "property": "x" * 301}}),
        ("PUT", "/custom-props", {"json": {"site_id": "shop.example", "property": " "}}),
        ("POST", "", {"json": {"domain": "tz.example", "timezone": "Mars/Olympus"}}),
        ("POST", "", {"json": {"domain": "not a domain"}}),
        ("GET", "", {"params": {"limit": "0"}}),
        (
            "PUT",
            "/shop.example",
            {"json": {"tracker_script_configuration": {"track_404_pages": 1}}},
        ),
        ("PUT", "/shop.example", {"json": {"tracker_script_configuration": "hash"}}),
        ("POST", "", {"json": {"domain": "c.example", "tracker_script_configuration": []}}),
    ],
)
def test_bad_input_is_a_clear_error_never_a_500(
    sites: Sites, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    if sites.call("GET", "/shop.example").status_code != 200:
        sites.form("POST", domain="shop.example")
    headers = {"Authorization": f"Bearer {sites.token}", **kwargs.pop("headers", {})}
    response = httpx.request(method, f"{sites.url}{path}", headers=headers, timeout=30, **kwargs)
    assert response.status_code in (400, 404), response.text
    assert set(response.json()) == {"error"} and response.json()["error"]


def test_tracker_script_configuration_as_the_docs_send_it_drives_the_sites_script(
    sites: Sites,
) -> None:
    """The docs' JSON examples: create with a configuration, update domain and configuration
    together; the switches Avocet acts on (hash routing, 404 pages) reach pa-<id>.js, the
    others report what our tracker always does."""
    created = sites.call(
        "POST",
        json={
            "domain": "test-config.example",
            "timezone": "Europe/London",
            "tracker_script_configuration": {
                "file_downloads": True,
                "form_submissions": True,
                "outbound_links": True,
            },
        },
    )
    assert created.status_code == 200, created.text
    config = created.json()["tracker_script_configuration"]
    site = sites.world.live.services.sites.by_domain("test-config.example")
    assert site is not None
    assert config == {
        "id": f"pa-{site.id}",
        "installation_type": None,
        "track_404_pages": False,
        "hash_based_routing": False,
        "outbound_links": True,
        "file_downloads": True,
        "revenue_tracking": True,
        "tagged_events": True,
        "form_submissions": False,  # not something our tracker does
        "pageview_props": False,
    }
    updated = sites.call(
        "PUT",
        "/test-config.example",
        json={
            "domain": "new-test-config.example",
            "tracker_script_configuration": {
                "hash_based_routing": True,
                "installation_type": "manual",
            },
        },
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["domain"] == "new-test-config.example"
    assert body["tracker_script_configuration"]["hash_based_routing"] is True
    assert body["tracker_script_configuration"]["installation_type"] == "manual"
    only_404 = sites.call(
        "PUT",
        "/new-test-config.example",
        json={"tracker_script_configuration": {"track_404_pages": True}},
    ).json()["tracker_script_configuration"]
    assert (only_404["track_404_pages"], only_404["hash_based_routing"]) == (True, True)
    script = httpx.get(
        f"{sites.world.live.url}/plausible/js/{config['id']}.js",
        headers={"Accept-Encoding": "identity"},
        timeout=30,
    )
    assert script.status_code == 200
    assert script.content.startswith(
        b'document.currentScript.setAttribute("data-domain","new-test-config.example");'
        b'document.currentScript.setAttribute("data-hash","");'
        b'document.currentScript.setAttribute("data-404","");'
    )
    assert httpx.get(f"{sites.world.live.url}/plausible/js/pa-nope.js").status_code == 404
