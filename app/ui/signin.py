"""Sign-in, first-run setup, password changes and two-factor codes for the settings UI."""

from __future__ import annotations

import anyio.to_thread

from app.auth.signin import (
    CodeNeeded,
    complete_sign_in,
    renew_recovery_codes,
    set_totp,
    set_up_first_user,
    sign_in,
)
from app.auth.twofactor import is_secret, matching_step
from app.errors import Unauthorized
from app.services import Services
from app.storage.accounts import (
    User,
    claim_totp_step,
    create_session,
    delete_other_sessions,
    set_password_hash,
    totp_secret_of,
)
from app.ui.actions import check_email, check_new_password, collect
from app.ui.web import Form, FormInvalid, Viewer


async def set_up(svc: Services, form: Form) -> User:
    errors: dict[str, str] = {}
    email = collect(errors, check_email, form.get("email"))
    password = collect(errors, check_new_password, form, "password", "password2")
    if errors or email is None or password is None:
        raise FormInvalid(errors)
    return await set_up_first_user(svc.auth, email, password)


async def check_password(svc: Services, ip: str, form: Form) -> User | CodeNeeded:
    """The signed-in user, or CodeNeeded (its pending token goes into a cookie)."""
    if not form.get("email") or not form.raw("password"):
        raise FormInvalid({"password": "Enter your email and password."})
    try:
        return await sign_in(svc.auth, ip, form.get("email"), form.raw("password"))
    except Unauthorized as exc:  # the API's words, as the form's sentence
        raise FormInvalid({"password": sentence(exc.message)}) from None


def sentence(message: str) -> str:
    """An API error message ("wrong email or password") as the forms word theirs."""
    return message[:1].upper() + message[1:] + "."


def start_session(svc: Services, user: User) -> tuple[str, int]:
    """(cookie value, max age) of a new sign-in session."""
    ttl = svc.settings.auth.session_ttl_hours * 3600
    token, _ = create_session(svc.meta, user.id, ttl)
    return token, ttl


def check_code(svc: Services, pending: str, form: Form) -> User:
    """The user whose pending sign-in this code completes."""
    try:
        return complete_sign_in(svc.auth, pending, form.get("code"))
    except Unauthorized as exc:  # the API's words, as the form's sentence
        raise FormInvalid({"code": sentence(exc.message)}) from None


async def change_password(svc: Services, viewer: Viewer, form: Form) -> None:
    user = viewer.user
    if not await svc.auth.passwords.verify(user.password_hash, form.raw("current")):
        raise FormInvalid({"current": "Your current password is not right."})
    password = check_new_password(form, "new", "new2")
    password_hash = await svc.auth.passwords.hash(password)
    await anyio.to_thread.run_sync(set_password_hash, svc.meta, user.id, password_hash)
    # Other browsers signed in with the old password are signed out.
    await anyio.to_thread.run_sync(delete_other_sessions, svc.meta, user.id, viewer.session_token)


def enable_totp(svc: Services, viewer: Viewer, form: Form) -> list[str]:
    """Turns two-factor sign-in on; the recovery codes to show once."""
    secret = form.get("secret")
    if not is_secret(secret):
        raise FormInvalid({"code": "The setup key was changed; start again."})
    step = matching_step(secret, form.get("code"))
    if step is None:
        raise FormInvalid({"code": "That code is not right; check the app's clock and key."})
    codes = set_totp(svc.auth, viewer.user.id, secret)
    claim_totp_step(svc.meta, viewer.user.id, step)
    return codes


async def renew_codes(svc: Services, viewer: Viewer, form: Form) -> list[str]:
    """New recovery codes (the password confirms it is the user)."""
    if not await svc.auth.passwords.verify(viewer.user.password_hash, form.raw("codes_password")):
        raise FormInvalid({"codes_password": "Your password is not right."})
    if totp_secret_of(svc.meta, viewer.user.id) is None:
        raise FormInvalid({"codes_password": "Turn two-factor sign-in on first."})
    return await anyio.to_thread.run_sync(renew_recovery_codes, svc.auth, viewer.user.id)


async def disable_totp(svc: Services, viewer: Viewer, form: Form) -> None:
    if not await svc.auth.passwords.verify(viewer.user.password_hash, form.raw("password")):
        raise FormInvalid({"password": "Your password is not right."})
    await anyio.to_thread.run_sync(set_totp, svc.auth, viewer.user.id, None)
