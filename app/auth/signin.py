"""Sign-in by email and password (and a TOTP code when the user has two-factor sign-in on),
throttled per (account, IP) and per IP, and first-run setup.

This is the one sign-in path: the settings UI, POST /api/v1/auth/login and
POST /api/v1/auth/token all go through `sign_in` and `complete_sign_in`, so no surface can
hand out a session or a JWT for a password alone when the account asks for a code."""

from __future__ import annotations

import anyio.to_thread
import msgspec

from app.auth.passwords import check_password_rules
from app.auth.principal import Authenticator
from app.auth.twofactor import (
    PENDING_TTL,
    is_recovery_code,
    issue_pending,
    matching_step,
    new_recovery_codes,
    pending_user,
)
from app.errors import Conflict, RateLimited, Unauthorized
from app.storage.accounts import (
    User,
    claim_totp_step,
    create_first_user,
    normalize_email,
    replace_recovery_codes,
    set_totp_secret,
    totp_secret_of,
    use_recovery_code,
    user_by_email,
    user_by_id,
)


class CodeNeeded(msgspec.Struct, frozen=True):
    """The password was right; the sign-in completes with a code and this pending token."""

    pending_token: str
    expires_in: int = PENDING_TTL


def totp_secret(auth: Authenticator, user_id: str) -> str | None:
    """The user's TOTP secret (opened from its sealed form), or None when 2FA is off.

    Fails closed: a secret the key can't open (totp.key lost) refuses the sign-in rather
    than letting the password alone through."""
    stored = totp_secret_of(auth.meta, user_id)
    if stored is None:
        return None
    secret = auth.totp_box.open(stored)
    if secret is None:
        raise Unauthorized(
            "two-factor sign-in can't be checked: the data dir's totp.key is missing or"
            " wrong; restore it from a backup, or turn two-factor sign-in off for this user"
        )
    return secret


def set_totp(auth: Authenticator, user_id: str, secret: str | None) -> list[str]:
    """Turn two-factor sign-in on (stored sealed; the new recovery codes are returned, to be
    shown once) or off (its recovery codes go too)."""
    set_totp_secret(auth.meta, user_id, None if secret is None else auth.totp_box.seal(secret))
    return renew_recovery_codes(auth, user_id) if secret is not None else _no_codes(auth, user_id)


def renew_recovery_codes(auth: Authenticator, user_id: str) -> list[str]:
    """Ten new one-time recovery codes (the old ones stop working); only HMACs are kept."""
    codes = new_recovery_codes()
    replace_recovery_codes(auth.meta, user_id, [auth.totp_box.code_digest(c) for c in codes])
    return codes


def _no_codes(auth: Authenticator, user_id: str) -> list[str]:
    replace_recovery_codes(auth.meta, user_id, [])
    return []


async def sign_in(
    auth: Authenticator, ip: str, email: str, password: str, code: str | None = None
) -> User | CodeNeeded:
    """The user, or CodeNeeded when their account asks for a code and none came; else
    Unauthorized, or RateLimited past the attempt limits.

    Every attempt counts before the (slow) check, so a burst of parallel guesses can't slip
    through while the first ones are still being hashed. The account limit is per
    (account, IP): a stranger guessing elsewhere can't lock the owner out, and an account
    with two-factor sign-in still lets a right password *and* a right code through."""
    limits = auth.limits
    key = email.strip().lower()
    by_ip = limits.hit(limits.login_ip, "login-ip", ip)
    if not by_ip.allowed:
        raise RateLimited("too many sign-in attempts from this address", by_ip.retry_after)
    by_account = limits.hit(limits.login_account, "login-account", key, ip)
    locked = not by_account.allowed
    if locked and not code:
        raise RateLimited("too many sign-in attempts; try again later", by_account.retry_after)
    user = await anyio.to_thread.run_sync(user_by_email, auth.meta, key)
    ok = await auth.passwords.verify(user.password_hash if user else None, password)
    secret = await anyio.to_thread.run_sync(totp_secret, auth, user.id) if user else None
    if user is None or not ok or (locked and secret is None):
        if locked:
            raise RateLimited("too many sign-in attempts; try again later", by_account.retry_after)
        raise Unauthorized("wrong email or password")
    if secret is None:
        return user
    if not code:
        return CodeNeeded(issue_pending(auth.pending_key, user.id))
    try:
        await anyio.to_thread.run_sync(_check_code, auth, user, secret, code)
    except Unauthorized:
        if locked:
            raise RateLimited(
                "too many sign-in attempts; try again later", by_account.retry_after
            ) from None
        raise
    return user


def complete_sign_in(auth: Authenticator, pending: str, code: str) -> User:
    """The user whose pending sign-in (from CodeNeeded) this code completes (blocking)."""
    user_id = pending_user(auth.pending_key, pending) if pending else None
    user = user_by_id(auth.meta, user_id) if user_id else None
    secret = totp_secret(auth, user.id) if user else None
    if user is None or secret is None:
        raise Unauthorized("this sign-in has expired; sign in again")
    _check_code(auth, user, secret, code)
    return user


def _check_code(auth: Authenticator, user: User, secret: str, code: str) -> None:
    verdict = auth.limits.hit(auth.limits.login_account, "login-code", user.id)
    if not verdict.allowed:
        raise RateLimited("too many codes tried; try again later", verdict.retry_after)
    if is_recovery_code(code):
        if not use_recovery_code(auth.meta, user.id, auth.totp_box.code_digest(code)):
            raise Unauthorized("that recovery code is not right or was used already")
        return
    step = matching_step(secret, code)
    if step is None:
        raise Unauthorized("that code is not right; enter the current 6-digit code")
    if not claim_totp_step(auth.meta, user.id, step):
        raise Unauthorized("that code was used already; wait for the next one")


async def set_up_first_user(auth: Authenticator, email: str, password: str) -> User:
    """First-run setup: creates the instance admin; Conflict once any user exists."""
    normalize_email(email)
    password_hash = await auth.passwords.hash(check_password_rules(password))
    user = await anyio.to_thread.run_sync(create_first_user, auth.meta, email, password_hash)
    if user is None:
        raise Conflict("setup is done: this instance already has users")
    return user
