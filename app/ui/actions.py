"""What the settings UI's forms do, validated field by field (blocking: run off the loop).

Each action raises FormInvalid (field -> message) or a domain error; `attempt` turns both
into the messages a form shows next to its fields, so handlers stay free of `try`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Any, Literal, TypeVar

import anyio.to_thread

from app.api.site_data import queue_site_deletion
from app.auth.keys import create_api_key
from app.auth.passwords import MAX_PASSWORD, MIN_PASSWORD
from app.errors import AppError, Forbidden, InvalidRequest, NotFound, RateLimited
from app.services import Services
from app.storage.accounts import (
    ROLES,
    Role,
    User,
    add_member,
    change_role,
    create_user,
    members_of,
    normalize_email,
    set_role,
    site_ids_of,
    user_by_email,
)
from app.storage.goals import Goal, add_goal, currency_code
from app.storage.invitations import (
    Invitation,
    claim_invitation,
    create_invitation,
    invitation_by_token,
)
from app.storage.keys import SCOPES, ApiKey, all_keys, revoke_key
from app.storage.meta import Site, check_timezone, normalize_domain
from app.ui.web import Form, FormInvalid

T = TypeVar("T")
_FIELD = re.compile(r"^([a-z_]+): (.+)$", re.S)


async def attempt(
    default_field: str, fn: Callable[..., T], *args: Any
) -> tuple[T | None, dict[str, str]]:
    """(result, {}) or (None, field -> message) when the action refused the input."""
    return await attempt_async(default_field, anyio.to_thread.run_sync, fn, *args)


async def attempt_async(
    default_field: str, fn: Callable[..., Awaitable[T]], *args: Any
) -> tuple[T | None, dict[str, str]]:
    """`attempt` for a coroutine function."""
    try:
        return await fn(*args), {}
    except FormInvalid as exc:
        return None, exc.errors
    except (Forbidden, NotFound, RateLimited):
        raise  # not a typo in a field: the error page says it (429 with Retry-After)
    except AppError as exc:
        match = _FIELD.match(exc.message)
        if match and match.group(1) == default_field:
            return None, {default_field: match.group(2)}
        return None, {default_field: exc.message}


def collect(errors: dict[str, str], check: Callable[..., T], *args: Any) -> T | None:
    """check(*args), or None with its FormInvalid messages added to `errors` (so a form
    reports every bad field at once)."""
    try:
        return check(*args)
    except FormInvalid as exc:
        errors.update(exc.errors)
        return None


def check_new_password(form: Form, field: str, again: str) -> str:
    password = form.raw(field)
    errors: dict[str, str] = {}
    if len(password) < MIN_PASSWORD:
        errors[field] = f"Use at least {MIN_PASSWORD} characters."
    elif len(password) > MAX_PASSWORD:
        errors[field] = f"Use at most {MAX_PASSWORD} characters."
    elif form.raw(again) != password:
        errors[again] = "The two passwords differ."
    if errors:
        raise FormInvalid(errors)
    return password


def check_email(value: str) -> str:
    if not value:
        raise FormInvalid({"email": "Enter an email address."})
    try:
        return normalize_email(value)
    except AppError as exc:
        raise FormInvalid({"email": "This isn't a valid email address."}) from exc


# sites


def _site_fields(form: Form) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    domain = name = zone = ""
    try:
        domain = normalize_domain(form.get("domain"))
    except AppError:
        errors["domain"] = "Enter a domain such as example.com (no path)."
    name = form.get("name")[:200]
    try:
        zone = check_timezone(form.get("timezone") or "UTC")
    except AppError:
        errors["timezone"] = "Pick a time zone from the list."
    if errors:
        raise FormInvalid(errors)
    return domain, name or domain, zone


def add_site(svc: Services, user: User, form: Form) -> Site:
    domain, name, zone = _site_fields(form)
    site = svc.meta.add_site(domain, name=name, timezone=zone)
    set_role(svc.meta, site.id, user.id, "owner")
    svc.sites.reload()
    return site


def edit_site(svc: Services, site: Site, form: Form) -> Site:
    domain, name, zone = _site_fields(form)
    updated = svc.meta.update_site(site.id, domain=domain, name=name, timezone=zone)
    svc.sites.reload()
    if updated is None:
        raise NotFound("site not found")
    return updated


def delete_site(svc: Services, site: Site, user: User, form: Form) -> str:
    """Queue the site's deletion (app/api/site_data.py); returns the request id."""
    if form.get("confirm").lower() != site.domain:
        raise FormInvalid({"confirm": f"Type {site.domain} to confirm."})
    return queue_site_deletion(svc, site, user.id)


def visible_sites(svc: Services, user: User) -> list[Site]:
    ids = [s.id for s in svc.sites.all()] if user.is_admin else site_ids_of(svc.meta, user.id)
    return [s for s in map(svc.sites.by_id, ids) if s is not None]


# API keys


def owned_sites(svc: Services, user: User) -> list[Site]:
    ids = site_ids_of(svc.meta, user.id, ("owner",))
    return [s for s in map(svc.sites.by_id, ids) if s is not None]


def parse_expiry_date(value: str, today: date) -> int | None:
    """A YYYY-MM-DD date -> the end of that day (UTC) in unix seconds; empty -> never."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise FormInvalid({"expires": "Use a date like 2027-01-31."}) from exc
    if day < today:
        raise FormInvalid({"expires": "Pick today or a later date."})
    return int(datetime.combine(day, time(23, 59, 59), UTC).timestamp())


def create_key(svc: Services, user: User, form: Form) -> tuple[ApiKey, str]:
    errors: dict[str, str] = {}
    scopes = [s for s in form.getall("scopes") if s in SCOPES]
    if not scopes or len(scopes) != len(form.getall("scopes")):
        errors["scopes"] = "Tick at least one scope."
    target = form.get("site")
    if target != "*" and target not in {s.id for s in owned_sites(svc, user)}:
        errors["site"] = "Pick one of your sites, or all of them."
    if len(form.get("name")) > 100:
        errors["name"] = "Use at most 100 characters."
    expires = collect(errors, parse_expiry_date, form.get("expires"), datetime.now(UTC).date())
    if errors:
        raise FormInvalid(errors)
    return create_api_key(
        svc.meta,
        user_id=user.id,
        site_id=None if target == "*" else target,
        scopes=tuple(s for s in SCOPES if s in scopes),
        name=form.get("name") or None,
        expires_at=expires,
    )


def revoke_own_key(svc: Services, user: User, key_id: str) -> None:
    if key_id not in {k.id for k in all_keys(svc.meta, user.id)}:
        raise NotFound("API key not found")
    revoke_key(svc.meta, key_id)


# goals


def add_site_goal(svc: Services, site: Site, form: Form) -> Goal:
    kind = form.get("kind")
    value = form.get("value")
    errors: dict[str, str] = {}
    if kind not in ("event", "page"):
        errors["kind"] = "Pick an event goal or a page goal."
    if not value:
        errors["value"] = "Enter an event name or a page path."
    elif len(value) > 500:
        errors["value"] = "Use at most 500 characters."
    elif kind == "page" and not value.startswith("/"):
        errors["value"] = "A page path starts with /, e.g. /thanks or /blog/*."
    currency = None
    try:
        currency = currency_code(form.get("currency"))
    except InvalidRequest:
        errors["currency"] = "Use a three-letter ISO 4217 code, e.g. EUR or USD, or leave it empty."
    if errors:
        raise FormInvalid(errors)
    name = form.get("display_name")[:200] or (value if kind == "event" else f"Visit {value}")
    goal_kind: Literal["event", "page"] = "event" if kind == "event" else "page"
    return add_goal(svc.meta, site.id, goal_kind, value, name, currency)


# members


def invite_member(
    svc: Services, site: Site, actor_role: Role, inviter: User, form: Form
) -> tuple[str, Invitation]:
    """An invitation link for an email (the link's token, shown once, and the invitation).

    Nobody gets a role or an account without following the link: the inviter never sets
    a password, and the answer is the same whether the address has an account or not."""
    role = form.get("role")
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = "Pick a role."
    elif role == "owner" and actor_role != "owner":
        errors["role"] = "Only an owner can add another owner."
    email = collect(errors, check_email, form.get("email"))
    if email is not None and any(m.email == email for m in members_of(svc.meta, site.id)):
        errors["email"] = "This person has access already; change their role in the list."
    if errors or email is None:
        raise FormInvalid(errors)
    return create_invitation(svc.meta, site.id, email, role, inviter.id)  # type: ignore[arg-type]


def change_member_role(
    svc: Services, site: Site, actor_role: Role, user_id: str, form: Form
) -> None:
    role = form.get("role")
    if role not in ROLES:
        raise FormInvalid({"role": "Pick a role."})
    change_role(svc.meta, site.id, actor_role, user_id, role)


def remove_member(svc: Services, site: Site, actor_role: Role, user_id: str) -> None:
    if not any(m.user_id == user_id for m in members_of(svc.meta, site.id)):
        raise NotFound("member not found")
    change_role(svc.meta, site.id, actor_role, user_id, None)


def accept_invitation(
    svc: Services, token: str, viewer: User | None, form: Form
) -> tuple[User, str]:
    """(The user who joins, the site's id): the signed-in invitee, or a new account whose
    password the invitee chose here. NotFound for a used, revoked or expired link."""
    invitation = invitation_by_token(svc.meta, token)
    if invitation is None:
        raise NotFound("This invitation link is used, revoked or expired; ask for a new one.")
    if viewer is not None and viewer.email != invitation.email:
        raise Forbidden(
            f"This invitation is for {invitation.email}; sign out, then open the link again."
        )
    user = viewer or user_by_email(svc.meta, invitation.email)
    if user is None:
        password = check_new_password(form, "password", "password2")
        password_hash = svc.auth.passwords.hash_sync(password)
    elif viewer is None:
        raise Forbidden(f"Sign in as {invitation.email} to accept this invitation.")
    if not claim_invitation(svc.meta, invitation.id):
        raise NotFound("This invitation link is used, revoked or expired; ask for a new one.")
    if user is None:
        user = create_user(svc.meta, invitation.email, password_hash)
    add_member(svc.meta, invitation.site_id, user.id, invitation.role)
    return user, invitation.site_id
