"""Where sign-in lands, over HTTP against the live app: a user with exactly one visible site
goes to its dashboard, a user with several (or none) to the sites list, and an explicit
?next= always wins. `/` sends a signed-in user to the same place."""

from __future__ import annotations

import pytest

from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.test_ui_forms import anonymous, form_token


def sign_in(world: World, email: str, next_path: str | None = None) -> tuple[int, str, object]:
    http = anonymous(world)
    token = form_token(http, "/ui/login" + (f"?next={next_path}" if next_path else ""))
    path = "/ui/login" + (f"?next={next_path}" if next_path else "")
    answer = http.post(path, data={"csrf_token": token, "email": email, "password": PASSWORD})
    return answer.status_code, answer.headers.get("location", ""), http


def test_sign_in_lands_on_the_dashboard_when_one_site_is_visible(world: World) -> None:
    owner = world.user("one@example.com")
    site_id = world.site("one.test", owner)
    status, location, http = sign_in(world, "one@example.com")
    assert (status, location) == (303, f"/ui/sites/{site_id}")
    home = http.get("/")  # type: ignore[attr-defined]
    assert (home.status_code, home.headers["location"]) == (303, f"/ui/sites/{site_id}")
    assert http.get(location).status_code == 200  # type: ignore[attr-defined]


def test_viewer_lands_on_the_dashboard_of_the_one_site_shared_with_them(world: World) -> None:
    owner = world.user("owner@example.com")
    viewer = world.user("viewer@example.com")
    world.site("mine.test", owner)
    shared = world.site("shared.test", owner, **{viewer.id: "viewer"})
    assert sign_in(world, "viewer@example.com")[:2] == (303, f"/ui/sites/{shared}")


@pytest.mark.parametrize("count", [0, 2])
def test_sign_in_lands_on_the_sites_list_when_sites_are_not_one(world: World, count: int) -> None:
    owner = world.user("many@example.com")
    for i in range(count):
        world.site(f"s{i}.test", owner)
    status, location, http = sign_in(world, "many@example.com")
    assert (status, location) == (303, "/ui/sites")
    home = http.get("/")  # type: ignore[attr-defined]
    assert (home.status_code, home.headers["location"]) == (303, "/ui/sites")


def test_explicit_next_wins_over_the_landing_page(world: World) -> None:
    owner = world.user("one@example.com")
    world.site("one.test", owner)
    assert sign_in(world, "one@example.com", "/ui/keys")[:2] == (303, "/ui/keys")
    assert sign_in(world, "one@example.com", "/ui/sites")[:2] == (303, "/ui/sites")
    # Not a /ui/ path: ignored, the landing page instead.
    status, location, _ = sign_in(world, "one@example.com", "https://evil.test/")
    assert status == 303
    assert location.startswith("/ui/sites/")


def test_instance_admin_lands_on_the_list_when_the_instance_has_several_sites(
    world: World,
) -> None:
    owner = world.user("owner@example.com")
    world.user("admin@example.com", admin=True)
    world.site("a.test", owner)
    world.site("b.test", owner)
    assert sign_in(world, "admin@example.com")[:2] == (303, "/ui/sites")
