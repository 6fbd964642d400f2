"""Making API keys: scopes checked, token generated, only its digest stored."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from app.auth.tokens import new_api_token
from app.errors import InvalidRequest
from app.storage.keys import SCOPES, ApiKey, insert_key
from app.storage.meta import MetaStore

MAX_NAME = 100


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, de-duplicated in a stable order, or InvalidRequest."""
    scopes = [s.strip() for value in values for s in value.replace(",", " ").split() if s]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(f"scopes: unknown {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidRequest("scopes: at least one is required")
    return tuple(s for s in SCOPES if s in scopes)


def parse_expiry(value: str | None, now: float) -> int | None:
    """ISO-8601 (naive = UTC) -> unix seconds in the future, or InvalidRequest."""
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidRequest(f"expiresAt: not an ISO-8601 timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    expires = int(moment.timestamp())
    if expires <= now:
        raise InvalidRequest("expiresAt: must be in the future")
    return expires


def create_api_key(
    meta: MetaStore,
    *,
    user_id: str,
    site_id: str | None,
    scopes: tuple[str, ...],
    name: str | None,
    expires_at: int | None,
) -> tuple[ApiKey, str]:
    """(stored key, token). The token is returned once and can't be recovered later."""
    label = (name or "API key").strip()[:MAX_NAME] or "API key"
    token, prefix, digest = new_api_token()
    key = insert_key(
        meta,
        key_prefix=prefix,
        digest=digest,
        name=label,
        scopes=scopes,
        site_id=site_id,
        created_by=user_id,
        expires_at=expires_at,
    )
    return key, token
