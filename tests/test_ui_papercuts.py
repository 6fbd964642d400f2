"""The settings UI's small things (#19 item 7), over HTTP against the live app: every form
that creates something redirects (post/redirect/get) and a reload creates nothing twice,
one-time values are shown once to their own session, settings say "Saved.", a site's
name follows its domain until set by hand, the error page has navigation, the app serves
its favicon."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from app.storage.keys import all_keys
from tests.accounts_fixtures import World, world_fixture  # noqa: F401
from tests.test_ui_forms import OWNER, Ui, sign_in_ui


@pytest.fixture(name="ui")
def ui_fixture(world: World) -> Iterator[Ui]:
    """test_ui_forms' world: OWNER owns shop.test (a viewer, a goal, a key), signed in."""
    owner = world.user(OWNER)
    other = world.user("viewer@example.com")
    site_id = world.site("shop.test", owner, **{other.id: "viewer"})
    http, csrf = sign_in_ui(world, OWNER)
    yield Ui(world, http, csrf, {"site": site_id, "user": other.id})


_TOKEN = re.compile(r'<code id="new-token" class="secret">(av_live_[^<]+)</code>')


def test_key_created_once_when_the_page_after_it_is_reloaded(ui: Ui) -> None:
    before = len(all_keys(ui.world.meta))
    fields = {"csrf_token": ui.csrf, "name": "CI", "site": ui.ids["site"], "scopes": "stats:read"}
    made = ui.http.post("/ui/keys", data=fields)
    assert made.status_code == 303
    shown = made.headers["location"]
    assert re.fullmatch(r"/ui/keys\?shown=[A-Za-z0-9_-]{16}", shown)
    assert "av_live_" not in shown  # the token never travels in a URL
    first = ui.http.get(shown)
    token = _TOKEN.search(first.text)
    assert token is not None
    assert "Key “CI” created" in first.text
    # Reloading the page (a GET) shows the list without the token and creates nothing.
    again = ui.http.get(shown)
    assert (again.status_code, _TOKEN.search(again.text)) == (200, None)
    assert len(all_keys(ui.world.meta)) == before + 1
    assert ui.world.live.services.auth.from_bearer(token.group(1)).key is not None


def test_one_time_values_are_not_shown_to_another_session(ui: Ui) -> None:
    fields = {"csrf_token": ui.csrf, "name": "CI", "site": "*", "scopes": "stats:read"}
    shown = ui.http.post("/ui/keys", data=fields).headers["location"]
    other, _ = sign_in_ui(ui.world, OWNER)  # the same user, another browser
    assert _TOKEN.search(other.get(shown).text) is None
    assert _TOKEN.search(ui.http.get(shown).text) is not None  # still there for its own


def test_invitation_link_shown_once_after_redirect(ui: Ui) -> None:
    path = ui.path("/ui/sites/{site}/members")
    fields = {"csrf_token": ui.csrf, "email": "new@example.com", "role": "viewer"}
    made = ui.http.post(path, data=fields)
    assert made.status_code == 303
    assert made.headers["location"].startswith(f"{path}?shown=")
    page = ui.http.get(made.headers["location"]).text
    assert "Invitation for new@example.com" in page
    assert re.search(r'id="invite-link"', page)
    assert "Invitation for" not in ui.http.get(made.headers["location"]).text


def test_recovery_codes_page_after_reload_goes_to_the_account(ui: Ui) -> None:
    answer = ui.http.get("/ui/account/recovery-codes?shown=nothing-kept-here")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/account")


def test_settings_say_saved_and_name_follows_domain_until_set_by_hand(ui: Ui) -> None:
    path = ui.path("/ui/sites/{site}/settings")
    sites = ui.world.live.services.sites
    # The form shows the name as it is (the domain): sent back unchanged, it follows.
    fields = {"csrf_token": ui.csrf, "domain": "new-shop.test", "timezone": "UTC"}
    saved = ui.http.post(path, data={**fields, "name": "shop.test"})
    assert (saved.status_code, saved.headers["location"]) == (303, f"{path}?done=saved")
    assert (
        '<p class="notice ok" role="status" id="saved">Saved.</p>'
        in ui.http.get(saved.headers["location"]).text
    )
    site = sites.by_id(ui.ids["site"])
    assert site is not None and (site.domain, site.name) == ("new-shop.test", "new-shop.test")
    # Set by hand, the name stays when the domain changes again.
    ui.http.post(path, data={**fields, "name": "My shop"})
    ui.http.post(path, data={**fields, "domain": "third.test", "name": "My shop"})
    site = sites.by_id(ui.ids["site"])
    assert site is not None and (site.domain, site.name) == ("third.test", "My shop")
    assert "Saved." not in ui.http.get(path).text  # only after saving


def test_api_rename_moves_a_name_never_set_by_hand(world: World) -> None:
    owner = world.user(OWNER)
    site_id = world.site("old.test", owner)
    with world.bearer(world.key(owner, None, ("sites:read", "sites:write"))) as api:
        answer = api.patch(f"/api/v1/sites/{site_id}", json={"domain": "new.test"})
        assert answer.status_code == 200, answer.text
        site = answer.json()["site"]
        assert (site["domain"], site["name"]) == ("new.test", "new.test")


def test_error_page_links_to_the_main_pages(ui: Ui) -> None:
    answer = ui.http.get("/ui/nope")
    assert answer.status_code == 404
    nav = re.search(r'<nav aria-label="Where to go".*?</nav>', answer.text, re.S)
    assert nav is not None
    assert re.findall(r'href="([^"]+)"', nav.group(0)) == [
        "/ui/sites",
        "/ui/keys",
        "/ui/account",
        "javascript:history.back()",
    ]


def test_favicon_served_and_linked(ui: Ui) -> None:
    for path in ("/favicon.ico", "/favicon.svg"):
        answer = httpx.get(ui.world.live.url + path)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/svg+xml"
        assert answer.headers["cache-control"] == "public, max-age=86400"
        assert answer.content.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    page = ui.http.get("/ui/sites").text
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page
