"""A site added before any user exists is never stranded: the first user (the instance
admin) owns it, whichever way they are created (CLI, set-up page, setup API), and an
instance admin can take ownership of any site left without an owner."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.storage.accounts import Member, members_of
from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.test_auth_keys import cli
from tests.test_ui_forms import anonymous, form_token, sign_in_ui


def test_cli_user_create_owns_sites_added_before_any_user(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = cli(data, "site", "add", "example.com")
    assert added.returncode == 0, added.stderr
    site_id = re.search(r"added with id (\w+)", added.stdout).group(1)  # type: ignore[union-attr]
    assert (
        "no owner yet (no user exists): the first user you create becomes its owner"
        " (avocet user create EMAIL, or the set-up page of the running server)"
    ) in added.stdout
    made = cli(data, "user", "create", "me@example.com", "--password-stdin", stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[1:] == [f"owner of example.com ({site_id}), which had no owner"]
    # Owning it, the admin can do what only owners do: make a key bound to the site.
    key = cli(data, "key", "create", "--site", site_id, "--json")
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout)["key"]["site_id"] == site_id
    # A second user owns nothing they were not given.
    second = cli(data, "user", "create", "two@example.com", "--password-stdin", "--json",
                 stdin=PASSWORD)  # fmt: skip
    assert json.loads(second.stdout)["owner_of"] == []


def test_setup_api_makes_the_admin_owner_of_sites_added_before(world: World) -> None:
    site_id = world.live.add_site("early.test")
    answer = world.client().post(
        "/api/v1/auth/setup", json={"email": "admin@example.com", "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    user_id = answer.json()["user"]["id"]
    assert members_of(world.meta, site_id) == [Member(user_id, "admin@example.com", "owner")]


def test_setup_page_lands_the_admin_on_the_site_added_before(world: World) -> None:
    site_id = world.live.add_site("early.test")
    http = anonymous(world)
    token = form_token(http, "/ui/setup")
    fields = {"csrf_token": token, "email": "me@example.com", "password": PASSWORD}
    answer = http.post("/ui/setup", data={**fields, "password2": PASSWORD})
    assert (answer.status_code, answer.headers["location"]) == (303, f"/ui/sites/{site_id}")
    assert [m.role for m in members_of(world.meta, site_id)] == ["owner"]


def test_instance_admin_takes_ownership_when_a_site_has_no_owner(world: World) -> None:
    admin = world.user("admin@example.com")  # the first user: the instance admin
    viewer = world.user("viewer@example.com")
    # An owner-less site as an older version left it: added after the users, no role.
    stranded = world.live.add_site("stranded.test")
    world.share(stranded, viewer, "viewer")
    http, csrf = sign_in_ui(world, "admin@example.com")
    people = http.get(f"/ui/sites/{stranded}/members").text
    assert "This site has no owner" in people
    assert f'action="/ui/sites/{stranded}/take-ownership"' in people
    # Not for a viewer (they see the notice, not the button) ...
    other, other_csrf = sign_in_ui(world, "viewer@example.com")
    assert (
        f"/ui/sites/{stranded}/take-ownership"
        not in other.get(f"/ui/sites/{stranded}/members").text
    )
    refused = other.post(f"/ui/sites/{stranded}/take-ownership", data={"csrf_token": other_csrf})
    assert refused.status_code == 403
    # ... and the admin's button works once.
    taken = http.post(f"/ui/sites/{stranded}/take-ownership", data={"csrf_token": csrf})
    assert (taken.status_code, taken.headers["location"]) == (
        303,
        f"/ui/sites/{stranded}/members?done=owner",
    )
    assert members_of(world.meta, stranded) == [
        Member(admin.id, "admin@example.com", "owner"),
        Member(viewer.id, "viewer@example.com", "viewer"),
    ]
    shown = http.get(taken.headers["location"]).text
    assert "You are now the owner of stranded.test." in shown
    assert "This site has no owner" not in shown
    # A site with an owner can't be taken, not even by an instance admin.
    owned = world.site("owned.test", viewer)
    again = http.post(f"/ui/sites/{owned}/take-ownership", data={"csrf_token": csrf})
    assert again.status_code == 403
    assert "This site has an owner: ask them for the owner role." in again.text
    assert [m.role for m in members_of(world.meta, owned)] == ["owner"]
