"""A complete Plausible API root at `plausible_base_path` (default `/plausible`), so an
integration written for Plausible changes only its host: the Stats API v1 and the Sites API
(routers here, errors in Plausible's {"error": message}), the v2 query and the Events API
(the root's own handlers: the path is rewritten before routing), and the tracker at
Plausible's script names (`script.hash.outbound-links.js`, ...) mapped onto our tracker's
attributes."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from functools import cache
from typing import Any

import anyio.to_thread
import brotli
from litestar import Request, Response, Router, route
from litestar.enums import HttpMethod, ScopeType
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.types import ASGIApp, Receive, Scope, Send

from app.api import plausible_sites, plausible_v1
from app.api.script import (
    CODINGS,
    Representation,
    accepted_codings,
    representations,
    script_response,
)
from app.errors import AppError, NotFound, RateLimited
from app.services import Services
from app.storage.tracker_config import config_of

log = logging.getLogger("avocet")

# The root's handlers that answer under the base path too (same handler, same envelope;
# /api/health is the one Plausible's docs point uptime monitors at).
SHARED_PATHS = frozenset({"/api/event", "/api/v2/query", "/api/health"})
# Plausible's script extensions -> the tracker attribute each one means here. Outbound
# links, file downloads, tagged events and revenue are always on in our tracker, so those
# names change nothing; `compat` is only for IE; `pageview-props` loads the script, whose
# pageviews carry no props (the README says so).
EXTENSIONS: dict[str, str | None] = {
    "hash": "hash",
    "local": "allow-local",
    "outbound-links": None,
    "file-downloads": None,
    "tagged-events": None,
    "revenue": None,
    "pageview-props": None,
    "compat": None,
}
# Extensions our tracker can't honour: refused, not silently served wrong.
REFUSED = {
    "manual": "script.manual.js (no automatic pageviews) has no equivalent in Avocet's"
    " tracker: use script.js, which sends the pageviews itself",
    "exclusions": "script.exclusions.js (data-exclude / data-include) has no equivalent in"
    " Avocet's tracker: exclude pages with the site's exclusion rules instead",
}
_SCRIPT_NAME = re.compile(r"script((?:\.[a-z0-9-]+)*)\.js")
_SITE_SCRIPT = re.compile(r"pa-([A-Za-z0-9_-]{1,64})\.js")


def normalized_base(path: str) -> str:
    """ "/plausible/" -> "/plausible"; "" or "/" -> "" (no base path: nothing is mounted)."""
    path = path.strip().rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return path


def plausible_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Plausible's error shape for everything under the base path: {"error": message}."""
    headers: dict[str, str] = {}
    if isinstance(exc, AppError):
        status, message = exc.status, exc.message
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        message = exc.detail if status < 500 else "Internal server error"
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, message = 500, "Internal server error"
    return Response({"error": message}, status_code=status, headers=headers)


Attributes = tuple[tuple[str, str], ...]  # (data-* name without "data-", value)


def script_attributes(filename: str) -> Attributes:
    """The tracker attributes a Plausible script name asks for, or NotFound."""
    match = _SCRIPT_NAME.fullmatch(filename)
    if match is None:
        raise NotFound(f"no script named {filename}")
    names = [n for n in match.group(1).split(".") if n]
    attributes: set[str] = set()
    for name in names:
        if name in REFUSED:
            raise NotFound(REFUSED[name])
        if name not in EXTENSIONS:
            raise NotFound(f"unknown script extension {name!r} in {filename}")
        attribute = EXTENSIONS[name]
        if attribute:
            attributes.add(attribute)
    return tuple((a, "") for a in sorted(attributes))


def site_script_attributes(svc: Services, filename: str) -> Attributes | None:
    """pa-<site id>.js, Plausible's per-site script: the site's domain and the switches its
    tracker_script_configuration stored (Sites API); None for another name."""
    match = _SITE_SCRIPT.fullmatch(filename)
    if match is None:
        return None
    site = svc.sites.by_id(match.group(1))
    if site is None:
        raise NotFound(f"no script named {filename}")
    stored = config_of(svc.meta, site.id)
    attributes = [("domain", site.domain)]
    if stored.get("hash_based_routing"):
        attributes.append(("hash", ""))
    if stored.get("track_404_pages"):
        attributes.append(("404", ""))
    return tuple(attributes)


@cache
def variant(attributes: Attributes) -> dict[str | None, Representation]:
    """The tracker with a first statement that sets the attributes on its own script tag
    (the tracker reads them from document.currentScript), compressed like script.js."""
    if not attributes:
        return representations()
    sets = "".join(
        f"document.currentScript.setAttribute({json.dumps('data-' + name)},{json.dumps(value)});"
        for name, value in attributes
    )
    body = sets.encode() + representations()[None].body
    tag = hashlib.sha256(body).hexdigest()[:32]
    packed = {
        "br": brotli.compress(body, quality=11),
        "gzip": gzip.compress(body, compresslevel=9, mtime=0),
    }
    found: dict[str | None, Representation] = {None: Representation(body, f'"{tag}"', None)}
    for coding in CODINGS:
        found[coding] = Representation(packed[coding], f'"{tag}-{coding}"', coding)
    return found


async def _script(request: Request[Any, Any, Any], filename: str) -> Response[bytes]:
    """script.js and its Plausible variants, cached and compressed as /script.js is."""
    svc: Services = request.app.state.services
    attributes = await anyio.to_thread.run_sync(site_script_attributes, svc, filename)
    found = variant(attributes if attributes is not None else script_attributes(filename))
    allowed = accepted_codings(request.headers.get("accept-encoding", ""))
    chosen = next((found[c] for c in CODINGS if c in allowed), found[None])
    return script_response(request, chosen)


_SCRIPT_METHODS = [HttpMethod.GET, HttpMethod.HEAD]


@route("/js/{filename:str}", http_method=_SCRIPT_METHODS, include_in_schema=False)
async def plausible_script(
    request: Request[Any, Any, Any], filename: FromPath[str]
) -> Response[bytes]:
    """{base}/js/script.js and its variants."""
    return await _script(request, filename)


@route("/js/{filename:str}", http_method=_SCRIPT_METHODS, include_in_schema=False)
async def root_script_variant(
    request: Request[Any, Any, Any], filename: FromPath[str]
) -> Response[bytes]:
    """/js/script.hash.js etc. at the root too, so a Plausible snippet whose host alone
    changed loads (/js/script.js itself is app/api/script.py's)."""
    return await _script(request, filename)


ROUTES = [root_script_variant]


def plausible_router(base_path: str) -> Router | None:
    """The routes under the base path (None when it is empty: no Plausible root)."""
    base = normalized_base(base_path)
    if not base:
        return None
    return Router(
        path=base,
        route_handlers=[*plausible_v1.ROUTES, *plausible_sites.ROUTES, plausible_script],
        exception_handlers={Exception: plausible_error},
        # Plausible's docs describe these (shapes, statuses, errors); our OpenAPI document
        # and its envelope rules (app/api/docs.py) cover our own APIs.
        include_in_schema=False,
    )


class PlausibleRoot:
    """In front of everything (the tracking fast path included): `{base}/api/event`,
    `{base}/api/v2/query` and `{base}/api/health` are the root's paths with the base taken
    off."""

    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.base = normalized_base(base_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.base and scope["type"] == ScopeType.HTTP:
            path: str = scope["path"]
            rest = path[len(self.base) :] if path.startswith(self.base + "/") else None
            if rest is not None and rest in SHARED_PATHS:
                scope = {**scope, "path": rest, "raw_path": rest.encode()}
        await self.app(scope, receive, send)
