"""Sign-in by email and password, throttled per account and per IP, and first-run setup."""

from __future__ import annotations

import anyio.to_thread

from app.auth.passwords import check_password_rules
from app.auth.principal import Authenticator
from app.errors import Conflict, RateLimited, Unauthorized
from app.storage.accounts import User, create_first_user, normalize_email, user_by_email


async def sign_in(auth: Authenticator, ip: str, email: str, password: str) -> User:
    """The user whose password this is, or Unauthorized; RateLimited past the attempt limits.

    Every attempt counts before the (slow) check, so a burst of parallel guesses can't slip
    through while the first ones are still being hashed."""
    limits = auth.limits
    key = email.strip().lower()
    for verdict, what in (
        (limits.hit(limits.login_ip, "login-ip", ip), "sign-in attempts from this address"),
        (limits.hit(limits.login_account, "login-account", key), "sign-in attempts"),
    ):
        if not verdict.allowed:
            raise RateLimited(f"too many {what}; try again later", verdict.retry_after)
    user = await anyio.to_thread.run_sync(user_by_email, auth.meta, key)
    ok = await auth.passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok:
        raise Unauthorized("wrong email or password")
    return user


async def set_up_first_user(auth: Authenticator, email: str, password: str) -> User:
    """First-run setup: creates the instance admin; Conflict once any user exists."""
    normalize_email(email)
    password_hash = await auth.passwords.hash(check_password_rules(password))
    user = await anyio.to_thread.run_sync(create_first_user, auth.meta, email, password_hash)
    if user is None:
        raise Conflict("setup is done: this instance already has users")
    return user
