"""The settings UI's forms over plain HTTP against the live app: every form refuses a
missing or wrong CSRF token, shows bad input as messages next to its fields, and never
answers 5xx; plus the flows a browser test doesn't click (two-factor, password, people)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pyotp
import pytest

from tests.accounts_fixtures import PASSWORD, World, world_fixture  # noqa: F401
from tests.conftest import CHROME_UA

_TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')
OWNER = "owner@example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Ui:
    world: World
    http: httpx.Client  # signed in as OWNER
    csrf: str
    ids: dict[str, str]

    def path(self, template: str) -> str:
        return template.format(**self.ids)


def anonymous(world: World) -> httpx.Client:
    return world.client()


def sign_in_ui(world: World, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """Signed in through the UI's own form; (client, the session's CSRF token)."""
    http = anonymous(world)
    token = form_token(http, "/ui/login")
    answer = http.post(
        "/ui/login", data={"csrf_token": token, "email": email, "password": password}
    )
    assert answer.status_code == 303, answer.text
    return http, page_token(http, "/ui/account")


def form_token(http: httpx.Client, path: str) -> str:
    found = _TOKEN.search(http.get(path).text)
    assert found, path
    return found.group(1)


def page_token(http: httpx.Client, path: str) -> str:
    return form_token(http, path)


def field_errors(body: str) -> dict[str, str]:
    """Field -> message of every visible error paragraph."""
    found = re.findall(r'<p class="error" id="e-([a-z0-9_]+)" >([^<]*)</p>', body)
    return {field: html.unescape(message) for field, message in found}


@pytest.fixture
def ui(world: World) -> Iterator[Ui]:
    owner = world.user(OWNER)
    other = world.user("viewer@example.com")
    site_id = world.site("shop.test", owner, **{other.id: "viewer"})
    goal = world.session(OWNER).post(f"/api/v1/sites/{site_id}/goals", json={"event_name": "x"})
    key = world.key(owner, site_id)
    key_id = world.live.services.auth.from_bearer(key).key.id  # type: ignore[union-attr]
    http, csrf = sign_in_ui(world, OWNER)
    ids = {"site": site_id, "goal": goal.json()["goal"]["id"], "key": key_id, "user": other.id}
    yield Ui(world, http, csrf, ids)


# (path, bad fields, field -> message shown) for every signed-in form.
SIGNED_IN_FORMS = [
    (
        "/ui/sites/new",
        {"domain": "not a domain/", "timezone": "Mars/Olympus"},
        {
            "domain": "Enter a domain such as example.com (no path).",
            "timezone": "Pick a time zone from the list.",
        },
    ),
    (
        "/ui/sites/{site}/settings",
        {"domain": "", "timezone": ""},
        {"domain": "Enter a domain such as example.com (no path)."},
    ),
    ("/ui/sites/{site}/delete", {"confirm": "shop"}, {"confirm": "Type shop.test to confirm."}),
    (
        "/ui/sites/{site}/goals",
        {"kind": "page", "value": "thanks"},
        {"value": "A page path starts with /, e.g. /thanks or /blog/*."},
    ),
    (
        "/ui/sites/{site}/goals",
        {"kind": "event", "value": "Purchase", "currency": "EURO"},
        {"currency": "Use a three-letter ISO 4217 code, e.g. EUR or USD, or leave it empty."},
    ),
    (
        "/ui/sites/{site}/goals",
        {"kind": "url", "value": ""},
        {
            "kind": "Pick an event goal or a page goal.",
            "value": "Enter an event name or a page path.",
        },
    ),
    (
        "/ui/sites/{site}/members",
        {"email": "nobody", "role": "king"},
        {"email": "This isn't a valid email address.", "role": "Pick a role."},
    ),
    (
        "/ui/keys",
        {"name": "x" * 101, "scopes": "root", "site": "nope", "expires": "31/12/2030"},
        {
            "name": "Use at most 100 characters.",
            "scopes": "Tick at least one scope.",
            "site": "Pick one of your sites, or all of them.",
            "expires": "Use a date like 2027-01-31.",
        },
    ),
    (
        "/ui/keys",
        {"scopes": "stats:read", "site": "*", "expires": "2001-01-01"},
        {"expires": "Pick today or a later date."},
    ),
    (
        "/ui/account/password",
        {"current": "not my password", "new": "new password 123", "new2": "new password 123"},
        {"current": "Your current password is not right."},
    ),
    (
        "/ui/account/password",
        {"current": PASSWORD, "new": "new password 123", "new2": "new password 124"},
        {"new2": "The two passwords differ."},
    ),
    (
        "/ui/account/totp",
        {"secret": "NOT-BASE32", "code": "123456"},
        {"code": "The setup key was changed; start again."},
    ),
    (
        "/ui/account/totp",
        {"secret": "A" * 32, "code": "12"},
        {"code": "That code is not right; check the app's clock and key."},
    ),
    (
        "/ui/account/totp/disable",
        {"password": "wrong"},
        {"password": "Your password is not right."},
    ),
]
# Forms with nothing to validate: a button (and its CSRF token).
BUTTONS = [
    "/ui/sites/{site}/goals/{goal}/delete",
    "/ui/sites/{site}/members/{user}/delete",
    "/ui/sites/{site}/members/{user}/role",
    "/ui/keys/{key}/revoke",
    "/ui/logout",
]
ALL_SIGNED_IN = sorted({p for p, _, _ in SIGNED_IN_FORMS} | set(BUTTONS))
ANONYMOUS = ["/ui/setup", "/ui/login", "/ui/login/code"]


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "security token is missing or out of date" in html.unescape(answer.text)


@pytest.mark.parametrize("path", ALL_SIGNED_IN)
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_signed_in_form_refused_when_csrf_token_missing_or_wrong(
    ui: Ui, path: str, token: str | None
) -> None:
    data = {} if token is None else {"csrf_token": token}
    assert_refused(ui.http.post(ui.path(path), data=data))
    # Nothing changed: the site, its goal, the key and the session are all still there.
    meta = ui.world.live.services.meta
    assert ui.world.live.services.sites.by_id(ui.ids["site"]) is not None
    assert ui.http.get("/ui/sites").status_code == 200
    assert meta.fetchone("SELECT revoked_at FROM api_keys WHERE id = ?", (ui.ids["key"],)) == (
        None,
    )


@pytest.mark.parametrize("path", ANONYMOUS)
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_anonymous_form_refused_when_csrf_token_missing_or_wrong(
    world: World, path: str, token: str | None
) -> None:
    world.user(OWNER)
    http = anonymous(world)
    form_token(http, "/ui/login")  # the browser holds a form cookie; the field must match it
    data = {"email": OWNER, "password": PASSWORD, "code": "123456"}
    if token is not None:
        data["csrf_token"] = token
    answer = http.post(path, data=data)
    assert_refused(answer)
    assert "avocet_session" not in answer.cookies


def test_sign_in_refused_when_token_sent_without_form_cookie(world: World) -> None:
    world.user(OWNER)
    token = form_token(anonymous(world), "/ui/login")  # another browser's token
    answer = anonymous(world).post(
        "/ui/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD}
    )
    assert_refused(answer)


@pytest.mark.parametrize(("path", "fields", "messages"), SIGNED_IN_FORMS)
def test_form_shows_messages_next_to_fields_when_input_bad(
    ui: Ui, path: str, fields: dict[str, str], messages: dict[str, str]
) -> None:
    answer = ui.http.post(ui.path(path), data={"csrf_token": ui.csrf, **fields})
    assert answer.status_code == 400, answer.text
    assert field_errors(answer.text) == messages
    for field in messages:  # a field on the page points at its message
        if f'id="f-{field}"' in answer.text:
            assert re.search(rf'aria-describedby="[^"]*e-{field}"', answer.text), field


@pytest.mark.parametrize(
    ("path", "fields", "messages"),
    [
        (
            "/ui/setup",
            {"email": "admin", "password": "short", "password2": "short"},
            {
                "email": "This isn't a valid email address.",
                "password": "Use at least 10 characters.",
            },
        ),
        (
            "/ui/setup",
            {"email": "a@example.com", "password": "long enough 1", "password2": "long enough 2"},
            {"password2": "The two passwords differ."},
        ),
        (
            "/ui/login",
            {"email": "", "password": ""},
            {"password": "Enter your email and password."},
        ),
        (
            "/ui/login",
            {"email": OWNER, "password": "nope nope"},
            {"password": "Wrong email or password."},
        ),
        (
            "/ui/login/code",
            {"code": "123456"},
            {"code": "This sign-in has expired; sign in again."},
        ),
    ],
)
def test_anonymous_form_shows_messages_when_input_bad(
    world: World, path: str, fields: dict[str, str], messages: dict[str, str]
) -> None:
    if path != "/ui/setup":
        world.user(OWNER)
    http = anonymous(world)
    token = form_token(http, "/ui/login/code" if path.endswith("code") else path)
    answer = http.post(path, data={"csrf_token": token, **fields})
    assert answer.status_code == 400, answer.text
    assert field_errors(answer.text) == messages
    assert PASSWORD not in answer.text and "long enough" not in answer.text  # never echoed


ODD_BODIES: list[dict[str, object]] = [
    {"content": b""},
    {
        "content": b"\xff\xfe\x00garbage",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    {"json": {"domain": ["a"], "csrf_token": 1}},
    {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
]
ODD_VALUES = ["", " ", "\x00", "é" * 5000, "<script>alert(1)</script>", "%00", "../../etc"]


@pytest.mark.parametrize("path", ALL_SIGNED_IN + ANONYMOUS)
def test_no_5xx_when_forms_get_odd_input(ui: Ui, path: str) -> None:
    url = ui.path(path)
    for body in ODD_BODIES:
        answer = ui.http.post(url, **body)  # type: ignore[arg-type]
        assert answer.status_code < 500, (body, answer.text)
    names = ["domain", "name", "timezone", "confirm", "kind", "value", "email", "role", "password"]
    names += ["password2", "scopes", "site", "expires", "current", "new", "new2", "secret", "code"]
    for value in ODD_VALUES:
        data = [("csrf_token", ui.csrf)] + [(n, value) for n in names] + [("scopes", value)]
        answer = ui.http.post(url, content=urlencode(data), headers=FORM)
        assert answer.status_code < 500, (value, answer.text[:500])
        assert "<script>alert(1)</script>" not in answer.text


@pytest.mark.parametrize(
    "path",
    ["/ui/sites/nosuchsite", "/ui/sites/nosuchsite/install", "/ui/sites/x/recent", "/ui/nope"],
)
def test_error_page_is_html_when_ui_path_not_found(ui: Ui, path: str) -> None:
    answer = ui.http.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text


def test_api_errors_stay_json_when_ui_is_mounted(ui: Ui) -> None:
    answer = ui.world.client().get("/api/v1/sites")
    assert answer.status_code == 401
    assert answer.json() == {"error": {"code": "unauthorized", "message": "an API key is required"}}


def test_pages_redirect_to_sign_in_when_signed_out(world: World) -> None:
    world.user(OWNER)
    http = anonymous(world)
    assert http.get("/").headers["location"] == "/ui/login"
    answer = http.get("/ui/keys")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login?next=%2Fui%2Fkeys")


def test_first_run_leads_to_setup_when_no_user_exists(world: World) -> None:
    http = anonymous(world)
    assert http.get("/").headers["location"] == "/ui/setup"
    token = form_token(http, "/ui/setup")
    answer = http.post(
        "/ui/setup",
        data={
            "csrf_token": token,
            "email": "Me@Example.com",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/sites/new")
    assert http.get("/ui/sites/new").status_code == 200
    # Setup is closed once a user exists.
    other = anonymous(world)
    assert other.get("/ui/setup").headers["location"] == "/ui/login"


def test_viewer_refused_when_changing_site(ui: Ui) -> None:
    http, csrf = sign_in_ui(ui.world, "viewer@example.com")
    answer = http.post(
        ui.path("/ui/sites/{site}/settings"), data={"csrf_token": csrf, "domain": "evil.test"}
    )
    assert answer.status_code == 403
    assert "Your role on shop.test (viewer) can&#39;t do this." in answer.text
    assert http.get(ui.path("/ui/sites/{site}/install")).status_code == 200


def test_site_deleted_when_domain_typed(ui: Ui) -> None:
    answer = ui.http.post(
        ui.path("/ui/sites/{site}/delete"), data={"csrf_token": ui.csrf, "confirm": "Shop.test"}
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/sites")
    assert ui.world.live.services.sites.by_id(ui.ids["site"]) is None


def test_password_changed_when_current_one_given(ui: Ui) -> None:
    new = "a brand new password"
    other, _ = sign_in_ui(ui.world, OWNER)  # a second browser
    answer = ui.http.post(
        "/ui/account/password",
        data={"csrf_token": ui.csrf, "current": PASSWORD, "new": new, "new2": new},
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/account?done=password")
    assert other.get("/ui/account").status_code == 303  # signed out everywhere else
    assert ui.http.get("/ui/account").status_code == 200
    sign_in_ui(ui.world, OWNER, new)


def test_sign_in_asks_for_code_when_two_factor_on(ui: Ui) -> None:
    page = ui.http.get("/ui/account/totp").text
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', page).group(1)  # type: ignore[union-attr]
    assert f"otpauth://totp/Avocet:{OWNER.replace('@', '%40')}?secret={secret}" in html.unescape(
        page
    )
    totp = pyotp.TOTP(secret)
    answer = ui.http.post(
        "/ui/account/totp",
        data={"csrf_token": ui.csrf, "secret": secret, "code": totp.now()},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    assert "Two-factor sign-in is on" in answer.text  # with the recovery codes, shown once

    http = anonymous(ui.world)
    token = form_token(http, "/ui/login")
    answer = http.post(
        "/ui/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD}
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login/code")
    assert "avocet_session" not in answer.cookies
    assert http.get("/ui/sites").status_code == 303  # not signed in yet
    wrong = http.post("/ui/login/code", data={"csrf_token": token, "code": "000000"})
    assert field_errors(wrong.text) == {
        "code": "That code is not right; enter the current 6-digit code."
    }
    step = int(time.time() // 30) + 1  # the next code: the one enabling 2FA used this one
    code = totp.at(step * 30)
    answer = http.post("/ui/login/code", data={"csrf_token": token, "code": code})
    # The owner sees one site: the code lands on its dashboard.
    landing = ui.path("/ui/sites/{site}")
    assert (answer.status_code, answer.headers["location"]) == (303, landing)
    assert http.get("/ui/sites").status_code == 200
    # The same code can't sign in twice.
    again = anonymous(ui.world)
    token = form_token(again, "/ui/login")
    again.post("/ui/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD})
    replay = again.post("/ui/login/code", data={"csrf_token": token, "code": code})
    assert field_errors(replay.text) == {
        "code": "That code was used already; wait for the next one."
    }


def test_member_invited_and_removed_when_owner_manages_people(ui: Ui) -> None:
    path = ui.path("/ui/sites/{site}/members")
    fields = {"email": "new@example.com", "role": "admin"}
    answer = ui.http.post(path, data={"csrf_token": ui.csrf, **fields}, follow_redirects=True)
    assert answer.status_code == 200
    link = re.search(r'value="http://[^"]+(/ui/invite/[A-Za-z0-9_-]+)"', answer.text)
    assert link is not None
    invitee = anonymous(ui.world)
    token = form_token(invitee, link.group(1))
    password = {"password": "welcome aboard!", "password2": "welcome aboard!"}
    accepted = invitee.post(link.group(1), data={"csrf_token": token, **password})
    assert accepted.status_code == 303
    http, _ = sign_in_ui(ui.world, "new@example.com", "welcome aboard!")
    assert "shop.test" in http.get("/ui/sites").text
    page = ui.http.get(path).text
    assert "new@example.com" in page and "admin" in page
    new_id = ui.world.live.services.meta.fetchone(
        "SELECT id FROM users WHERE email = 'new@example.com'"
    )[0]  # type: ignore[index]
    answer = ui.http.post(f"{path}/{new_id}/delete", data={"csrf_token": ui.csrf})
    assert answer.status_code == 303
    assert http.get(ui.path("/ui/sites/{site}/install")).status_code == 404


def test_last_owner_kept_when_removing_self(ui: Ui) -> None:
    owner_id = ui.world.live.services.meta.fetchone(
        "SELECT id FROM users WHERE email = ?", (OWNER,)
    )[0]  # type: ignore[index]
    answer = ui.http.post(
        ui.path("/ui/sites/{site}/members/") + f"{owner_id}/delete", data={"csrf_token": ui.csrf}
    )
    assert answer.status_code == 403
    assert "A site keeps at least one owner" in answer.text


def test_recent_events_listed_newest_first_when_hits_arrive(ui: Ui) -> None:
    collect = httpx.Client(base_url=ui.world.live.url, headers={"User-Agent": CHROME_UA})
    try:
        for path in ("/a", "/b"):
            body = {"n": "pageview", "u": f"https://shop.test{path}", "s": ui.ids["site"]}
            assert collect.post("/collect", json=body).status_code == 204
            time.sleep(0.01)
    finally:
        collect.close()
    answer = ui.http.get(ui.path("/ui/sites/{site}/recent"))
    events = answer.json()["events"]
    assert [(e["name"], e["path"], e["device"]) for e in events] == [
        ("pageview", "/b", "desktop"),
        ("pageview", "/a", "desktop"),
    ]
    assert set(events[0]) == {"time", "name", "path", "source", "device", "country"}


def test_revenue_goal_added_with_its_currency(ui: Ui) -> None:
    """A revenue goal (Plausible's goal currency): the code is stored upper-case and listed."""
    answer = ui.http.post(
        ui.path("/ui/sites/{site}/goals"),
        data={"csrf_token": ui.csrf, "kind": "event", "value": "Purchase", "currency": "eur"},
    )
    assert answer.status_code in (302, 303), answer.text
    page = ui.http.get(ui.path("/ui/sites/{site}/goals")).text
    assert re.search(r"<td><code>Purchase</code></td><td>EUR</td>", page), page
    goals = ui.world.session(OWNER).get(ui.path("/api/v1/sites/{site}/goals")).json()["goals"]
    assert [(g["event_name"], g["currency"]) for g in goals] == [("x", None), ("Purchase", "EUR")]
