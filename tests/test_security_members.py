"""People and invitations (#17 items 2 and 5): one rule set for every role change, and
invitations the invitee accepts with a password of their own (no account pre-hijacking)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from app.config import MailSettings
from app.storage.accounts import role_of, user_by_email
from tests.accounts_fixtures import PASSWORD, World, auth_settings, world_fixture  # noqa: F401
from tests.conftest import free_port, start_live_server, stop_live_server
from tests.test_ui_forms import field_errors, form_token, page_token, sign_in_ui

OWNER, ADMIN, VIEWER = "owner@example.com", "admin@example.com", "viewer@example.com"
_LINK = re.compile(r'value="(http://[^"]+/ui/invite/[A-Za-z0-9_-]+)"')


class Site:
    def __init__(self, world: World) -> None:
        self.world = world
        self.owner = world.user(OWNER)
        self.admin = world.user(ADMIN)
        self.viewer = world.user(VIEWER)
        self.id = world.site(
            "shop.test", self.owner, **{self.admin.id: "admin", self.viewer.id: "viewer"}
        )
        self.key = world.key(self.owner, self.id, ("stats:read",))

    def role(self, user_id: str) -> str | None:
        return role_of(self.world.meta, self.id, user_id)

    def path(self, tail: str = "") -> str:
        return f"/ui/sites/{self.id}/members{tail}"


@pytest.fixture
def site(world: World) -> Site:
    return Site(world)


def _invite(http: httpx.Client, csrf: str, site: Site, email: str, role: str) -> httpx.Response:
    # Post/redirect/get: a created invitation's link is on the page the POST redirects to.
    return http.post(
        site.path(),
        data={"csrf_token": csrf, "email": email, "role": role},
        follow_redirects=True,
    )


def test_admin_cannot_demote_the_owner_by_inviting_them(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, ADMIN)
    answer = _invite(http, csrf, site, OWNER, "viewer")
    assert answer.status_code == 400
    assert field_errors(answer.text)["email"] == (
        "This person has access already; change their role in the list."
    )
    assert site.role(site.owner.id) == "owner"
    with site.world.bearer(site.key) as api:  # the owner's key still reads the stats
        assert api.get("/api/v1/stats/aggregate", params={"site_id": site.id}).status_code == 200


def test_admin_cannot_change_an_owners_role_or_grant_owner(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, ADMIN)
    demote = http.post(
        site.path(f"/{site.owner.id}/role"), data={"csrf_token": csrf, "role": "viewer"}
    )
    promote = http.post(
        site.path(f"/{site.viewer.id}/role"), data={"csrf_token": csrf, "role": "owner"}
    )
    remove = http.post(site.path(f"/{site.owner.id}/delete"), data={"csrf_token": csrf})
    assert demote.status_code == 403
    assert "Only an owner can grant the owner role" in demote.text
    assert promote.status_code == 403
    assert remove.status_code == 403
    assert (site.role(site.owner.id), site.role(site.viewer.id)) == ("owner", "viewer")
    # What an admin may do: change a viewer to admin and back.
    up = http.post(site.path(f"/{site.viewer.id}/role"), data={"csrf_token": csrf, "role": "admin"})
    assert up.status_code == 303
    assert site.role(site.viewer.id) == "admin"


def test_site_always_keeps_an_owner_when_owners_change_roles(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, OWNER)
    alone = http.post(
        site.path(f"/{site.owner.id}/role"), data={"csrf_token": csrf, "role": "admin"}
    )
    assert alone.status_code == 403
    assert "A site keeps at least one owner" in alone.text
    assert site.role(site.owner.id) == "owner"
    second = http.post(
        site.path(f"/{site.admin.id}/role"), data={"csrf_token": csrf, "role": "owner"}
    )
    assert second.status_code == 303
    step_down = http.post(
        site.path(f"/{site.owner.id}/role"), data={"csrf_token": csrf, "role": "admin"}
    )
    assert step_down.status_code == 303
    assert (site.role(site.owner.id), site.role(site.admin.id)) == ("admin", "owner")


def test_instance_admin_demoted_on_a_site_still_acts_as_admin(world: World) -> None:
    owner = world.user(OWNER)
    boss = world.user("boss@example.com", admin=True)
    site_id = world.site("shop.test", owner, **{boss.id: "viewer"})
    http, _ = sign_in_ui(world, "boss@example.com")
    assert http.get(f"/ui/sites/{site_id}/goals").status_code == 200
    assert "Invite someone" in http.get(f"/ui/sites/{site_id}/members").text


def test_invitation_creates_no_account_and_reads_alike_for_known_and_new_emails(
    site: Site,
) -> None:
    outsider = site.world.user("known@example.com")
    http, csrf = sign_in_ui(site.world, ADMIN)
    new = _invite(http, csrf, site, "new@example.com", "viewer")
    known = _invite(http, csrf, site, "known@example.com", "viewer")
    assert (new.status_code, known.status_code) == (200, 200)
    assert user_by_email(site.world.meta, "new@example.com") is None
    assert site.role(outsider.id) is None  # nobody gets a role before accepting

    def notice(page: str, email: str) -> str:
        found = re.search(r'<section class="card notice".*?</section>', page, re.S)
        assert found is not None
        return _LINK.sub("LINK", found.group(0)).replace(email, "EMAIL")

    assert notice(new.text, "new@example.com") == notice(known.text, "known@example.com")


def test_password_fields_of_the_old_invite_form_set_nothing(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, ADMIN)
    answer = http.post(
        site.path(),
        data={
            "csrf_token": csrf,
            "email": "victim@example.com",
            "role": "viewer",
            "password": "attacker knows this",
            "password2": "attacker knows this",
        },
    )
    assert answer.status_code == 303  # the invitation made; its link on the next page
    assert user_by_email(site.world.meta, "victim@example.com") is None
    with site.world.client() as anon:
        token = form_token(anon, "/ui/login")
        login = anon.post(
            "/ui/login",
            data={
                "csrf_token": token,
                "email": "victim@example.com",
                "password": "attacker knows this",
            },
        )
    assert login.status_code == 400


def test_invitee_sets_own_password_and_link_works_once(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, OWNER)
    link = _LINK.search(_invite(http, csrf, site, "new@example.com", "admin").text)
    assert link is not None
    path = httpx.URL(link.group(1)).path
    with site.world.client() as invitee:
        page = invitee.get(path)
        assert page.status_code == 200
        assert "Join shop.test" in page.text and "new@example.com" in page.text
        token = page_token(invitee, path)
        short = invitee.post(path, data={"csrf_token": token, "password": "x", "password2": "x"})
        assert field_errors(short.text)["password"] == "Use at least 10 characters."
        done = invitee.post(
            path, data={"csrf_token": token, "password": PASSWORD, "password2": PASSWORD}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/sites/{site.id}"
        assert "shop.test" in invitee.get("/ui/sites").text  # signed in
    user = user_by_email(site.world.meta, "new@example.com")
    assert user is not None and site.role(user.id) == "admin"
    with site.world.client() as again:
        assert again.get(path).status_code == 404


def test_existing_account_accepts_after_signing_in_as_the_invitee(site: Site) -> None:
    known = site.world.user("known@example.com")
    http, csrf = sign_in_ui(site.world, OWNER)
    link = _LINK.search(_invite(http, csrf, site, "known@example.com", "viewer").text)
    assert link is not None
    path = httpx.URL(link.group(1)).path
    with site.world.client() as anon:
        page = anon.get(path).text
        assert "Sign in to accept" in page
        token = form_token(anon, "/ui/login")
        refused = anon.post(
            path, data={"csrf_token": token, "password": "a new password!", "password2": "x"}
        )
        assert refused.status_code == 403
    other, other_csrf = sign_in_ui(site.world, VIEWER)
    assert other.post(path, data={"csrf_token": other_csrf}).status_code == 403
    invitee, invitee_csrf = sign_in_ui(site.world, "known@example.com")
    accepted = invitee.post(path, data={"csrf_token": invitee_csrf})
    assert accepted.status_code == 303
    assert site.role(known.id) == "viewer"


def test_revoked_or_expired_invitation_is_404(site: Site) -> None:
    http, csrf = sign_in_ui(site.world, OWNER)
    first = _LINK.search(_invite(http, csrf, site, "a@example.com", "viewer").text)
    second = _LINK.search(_invite(http, csrf, site, "b@example.com", "viewer").text)
    assert first is not None and second is not None
    invitation_id = site.world.meta.fetchone(
        "SELECT id FROM invitations WHERE email = 'a@example.com'"
    )[0]
    revoked = http.post(
        site.path().replace("/members", f"/invitations/{invitation_id}/delete"),
        data={"csrf_token": csrf},
    )
    assert revoked.status_code == 303
    site.world.meta.execute(
        "UPDATE invitations SET expires_at = ? WHERE email = 'b@example.com'",
        (int(time.time()) - 1,),
    )
    with site.world.client() as anon:
        for found in (first, second):
            assert anon.get(httpx.URL(found.group(1)).path).status_code == 404


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_invitation_is_mailed_when_smtp_is_set_up(tmp_path: Path, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    mail = MailSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        from_address="Avocet <analytics@example.com>",
    )
    live = start_live_server(auth_settings(tmp_path, mail=mail))
    try:
        world = World(live)
        site = Site(world)
        http, csrf = sign_in_ui(world, OWNER)
        page = _invite(http, csrf, site, "new@example.com", "viewer").text
        assert "We mailed this link to new@example.com" in page
        link = _LINK.search(page)
        assert link is not None
        assert len(inbox.messages) == 1
        message = inbox.messages[0]
        assert message["To"] == "new@example.com"
        assert message["From"] == "Avocet <analytics@example.com>"
        assert message["Subject"] == "You're invited to the analytics of shop.test"
        assert link.group(1) in message.get_payload(decode=True).decode()
        for client in world.clients:
            client.close()
    finally:
        stop_live_server(live)
