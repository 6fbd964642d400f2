"""Sites and goals over real HTTP: create, read, change, delete; goals for conversions."""

from __future__ import annotations

from tests.accounts_fixtures import World, world_fixture  # noqa: F401


def test_site_lifecycle_works_when_owner_uses_a_jwt(world: World) -> None:
    world.user("owner@example.com")
    with world.bearer(world.jwt("owner@example.com")) as http:
        created = http.post(
            "/api/v1/sites",
            json={"domain": "https://www.Shop.test/", "timezone": "Europe/Paris"},
        )
        assert created.status_code == 201
        site = created.json()["site"]
        assert (site["domain"], site["name"], site["timezone"]) == (
            "shop.test", "shop.test", "Europe/Paris",
        )  # fmt: skip
        assert "secret" not in site
        got = http.get(f"/api/v1/sites/{site['id']}").json()["site"]
        assert got == {**site, "role": "owner"}
        patched = http.patch(f"/api/v1/sites/{site['id']}", json={"name": "Shop"})
        assert patched.json()["site"]["name"] == "Shop"
        bad = http.patch(f"/api/v1/sites/{site['id']}", json={"timezone": "Mars/Base"})
        assert bad.status_code == 400
        dup = http.post("/api/v1/sites", json={"domain": "shop.test"})
        assert dup.status_code == 400
        assert [s["id"] for s in http.get("/api/v1/sites").json()["sites"]] == [site["id"]]
        deleting = http.delete(f"/api/v1/sites/{site['id']}")
        assert deleting.status_code == 202
        assert deleting.json() == {
            "request_id": deleting.json()["request_id"],
            "type": "delete_site",
            "status": "queued",
            "deletes": {
                "events": 0, "rolled_up_days": 0, "rollup_rows": 0, "usage_counters": 0,
                "api_keys": 0, "funnels": 0, "annotations": 0, "segments": 0, "goals": 0,
                "share_links": 0, "invitations": 0, "members": 1, "salts": 0, "exclusions": 0,
                "email_reports": 0, "traffic_alerts": 0, "privacy_requests": 0,
            },
        }  # fmt: skip
        assert http.get(f"/api/v1/sites/{site['id']}").status_code == 404
        # a deleted site no longer collects either
        assert world.live.services.sites.by_id(site["id"]) is None


def test_goals_are_stored_per_site_when_created_and_deleted(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    with world.bearer(world.key(owner, site, ("sites:read", "sites:write"))) as http:
        event = http.post(f"/api/v1/sites/{site}/goals", json={"event_name": "signup"})
        page = http.post(
            f"/api/v1/sites/{site}/goals",
            json={"page_path": "/thanks*", "display_name": "Thank you"},
        )
        both = http.post(f"/api/v1/sites/{site}/goals", json={"event_name": "a", "page_path": "/a"})
        again = http.post(f"/api/v1/sites/{site}/goals", json={"event_name": "signup"})
        listed = http.get(f"/api/v1/sites/{site}/goals").json()["goals"]
        gone = http.delete(f"/api/v1/sites/{site}/goals/{event.json()['goal']['id']}")
        after = http.get(f"/api/v1/sites/{site}/goals").json()["goals"]
    assert event.status_code == page.status_code == 201
    assert (both.status_code, again.status_code) == (400, 409)
    assert [(g["type"], g["event_name"], g["page_path"], g["display_name"]) for g in listed] == [
        ("event", "signup", None, "signup"),
        ("page", None, "/thanks*", "Thank you"),
    ]
    assert gone.json() == {"ok": True}
    assert [g["type"] for g in after] == ["page"]


def test_revenue_goal_takes_an_iso_4217_currency(world: World) -> None:
    """Plausible's revenue goals carry a currency: any case in, upper case out; a code that
    is no ISO 4217 currency is a 400 naming the field."""
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    with world.bearer(world.key(owner, site, ("sites:read", "sites:write"))) as http:
        made = http.post(
            f"/api/v1/sites/{site}/goals", json={"event_name": "Purchase", "currency": "usd"}
        )
        bad = http.post(
            f"/api/v1/sites/{site}/goals", json={"event_name": "Donation", "currency": "XYZ"}
        )
        listed = http.get(f"/api/v1/sites/{site}/goals").json()["goals"]
    assert made.status_code == 201, made.text
    assert made.json()["goal"]["currency"] == "USD"
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == (
        "currency: 'XYZ' is not an ISO 4217 currency code (e.g. EUR, USD)"
    )
    assert [(g["event_name"], g["currency"]) for g in listed] == [("Purchase", "USD")]
