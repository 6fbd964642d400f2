"""Pages: a site's people (roles, invitations) and the invitee's side of an invitation link."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.errors import NotFound
from app.storage.accounts import Role, members_of, take_ownership, user_by_email
from app.storage.invitations import invitation_by_token, open_invitations, revoke_invitation
from app.ui import actions, flash
from app.ui.actions import attempt
from app.ui.pages_account import signed_in_redirect
from app.ui.pages_sites import base_url
from app.ui.web import (
    AnyRequest,
    Viewer,
    anonymous_form,
    form_token,
    page,
    redirect,
    services,
    signed_in,
    signed_in_form,
    viewer_or_none,
    viewer_site,
)

EDITORS: tuple[Role, ...] = ("owner", "admin")


async def _members(request: AnyRequest, viewer: Viewer, site_id: str, **context: Any) -> Template:
    site, role = await viewer_site(request, viewer, site_id)
    meta = services(request).meta
    members = await anyio.to_thread.run_sync(members_of, meta, site.id)
    ownerless = not any(m.role == "owner" for m in members)
    invitations = []
    if role in EDITORS:
        invitations = await anyio.to_thread.run_sync(open_invitations, meta, site.id)
    return page(
        request,
        "members.html",
        viewer,
        site=site,
        role=role,
        members=members,
        invitations=invitations,
        mail_on=services(request).mailer.enabled,
        ownerless=ownerless,
        done=request.query_params.get("done", ""),
        **context,
    )


@get("/ui/sites/{site_id:str}/members")
async def members_page(request: AnyRequest, site_id: FromPath[str]) -> Template:
    viewer = await signed_in(request)
    invited = flash.taken(request, viewer)  # the invitation the POST that led here made
    if isinstance(invited, dict) and invited.get("site_id") == site_id:
        return await _members(request, viewer, site_id, invited=invited)
    return await _members(request, viewer, site_id)


@post("/ui/sites/{site_id:str}/members")
async def invite(request: AnyRequest, site_id: FromPath[str]) -> Template | Redirect:
    """Creates an invitation; the page it redirects to shows its link once (and it is
    mailed when mail is on)."""
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    svc = services(request)
    made, errors = await attempt("email", actions.invite_member, svc, site, role, viewer.user, form)
    if made is None:
        return await _members(request, viewer, site_id, errors=errors, values=form.values())
    token, invitation = made
    link = f"{base_url(request)}/ui/invite/{token}"
    mailed = await svc.mailer.send(
        invitation.email,
        f"You're invited to the analytics of {site.domain}",
        f"{viewer.user.email} invites you to see the analytics of {site.domain} on Avocet"
        f" (as {invitation.role}).\n\nFollow this link within 7 days to accept:\n{link}\n\n"
        "If you did not expect this, ignore this mail.\n",
    )
    invited = {"site_id": site.id, "email": invitation.email, "link": link, "mailed": mailed}
    return redirect(f"/ui/sites/{site.id}/members?shown={flash.keep(request, viewer, invited)}")


@post("/ui/sites/{site_id:str}/members/{user_id:str}/role")
async def change_role(
    request: AnyRequest, site_id: FromPath[str], user_id: FromPath[str]
) -> Template | Redirect:
    viewer, form = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    svc = services(request)
    _, errors = await attempt("role", actions.change_member_role, svc, site, role, user_id, form)
    if errors:
        return await _members(request, viewer, site_id, role_errors={user_id: errors["role"]})
    return redirect(f"/ui/sites/{site.id}/members")


@post("/ui/sites/{site_id:str}/take-ownership")
async def claim_site(request: AnyRequest, site_id: FromPath[str]) -> Redirect:
    """An instance admin becomes the owner of a site that has none (see take_ownership)."""
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id)
    await anyio.to_thread.run_sync(take_ownership, services(request).meta, site.id, viewer.user)
    return redirect(f"/ui/sites/{site.id}/members?done=owner")


@post("/ui/sites/{site_id:str}/members/{user_id:str}/delete")
async def remove_member(
    request: AnyRequest, site_id: FromPath[str], user_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, role = await viewer_site(request, viewer, site_id, EDITORS)
    svc = services(request)
    await anyio.to_thread.run_sync(actions.remove_member, svc, site, role, user_id)
    return redirect(f"/ui/sites/{site.id}/members")


@post("/ui/sites/{site_id:str}/invitations/{invitation_id:str}/delete")
async def revoke(
    request: AnyRequest, site_id: FromPath[str], invitation_id: FromPath[str]
) -> Redirect:
    viewer, _ = await signed_in_form(request)
    site, _ = await viewer_site(request, viewer, site_id, EDITORS)
    meta = services(request).meta
    await anyio.to_thread.run_sync(revoke_invitation, meta, site.id, invitation_id)
    return redirect(f"/ui/sites/{site.id}/members")


async def _invite_page(request: AnyRequest, token: str, **context: Any) -> Template:
    svc = services(request)
    invitation = await anyio.to_thread.run_sync(invitation_by_token, svc.meta, token)
    viewer = await anyio.to_thread.run_sync(viewer_or_none, request)
    site = svc.sites.by_id(invitation.site_id) if invitation else None
    if invitation is None or site is None:
        raise NotFound("This invitation link is used, revoked or expired; ask for a new one.")
    has_account = False
    if viewer is None:
        found = await anyio.to_thread.run_sync(user_by_email, svc.meta, invitation.email)
        has_account = found is not None
    csrf, cookies = (viewer.csrf_token, []) if viewer else form_token(request)
    return page(
        request,
        "invite.html",
        viewer,
        cookies=cookies,
        csrf_token=csrf,
        invitation=invitation,
        invited_site=site,
        has_account=has_account,
        token=token,
        **context,
    )


@get("/ui/invite/{token:str}")
async def invite_page(request: AnyRequest, token: FromPath[str]) -> Template:
    return await _invite_page(request, token)


@post("/ui/invite/{token:str}")
async def accept(request: AnyRequest, token: FromPath[str]) -> Template | Redirect:
    """Joins the site: signed in as the invitee, or as a new account with its own password."""
    viewer = await anyio.to_thread.run_sync(viewer_or_none, request)
    form = (await signed_in_form(request))[1] if viewer else await anonymous_form(request)
    svc = services(request)
    joined, errors = await attempt(
        "password", actions.accept_invitation, svc, token, viewer.user if viewer else None, form
    )
    if joined is None:
        return await _invite_page(request, token, errors=errors)
    user, site_id = joined
    if viewer is not None:
        return redirect(f"/ui/sites/{site_id}")
    return await signed_in_redirect(request, user, f"/ui/sites/{site_id}")


ROUTES = [
    members_page,
    invite,
    change_role,
    claim_site,
    remove_member,
    revoke,
    invite_page,
    accept,
]
