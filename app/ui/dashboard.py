"""The dashboard page's context: what the template and its scripts need to know.

The dashboard is a client of the public stats API. The server renders a shell and hands
the scripts the site, how to authenticate (the signed-in session's cookie, or a bearer
token such as a share link's) and whether the page is a share or an embed; the scripts
read these from data- attributes of one root element (`#dashboard`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.storage.funnels import Funnel
from app.storage.goals import Goal
from app.storage.meta import Site
from app.storage.segments import Segment

BUILT = Path(__file__).resolve().parents[2] / "static" / "ui" / "dashboard"


# Every file under /ui/static/dashboard/ is cached by browsers for a year (app/ui/routes.py):
# esbuild names the chunks and the atlas by content hash, and the page asks for the two
# entry points with ?v=<hash of their bytes>, so a rebuild is fetched at once.
ENTRY_POINTS = ("dashboard.js", "dashboard.css")


def preload_chunks() -> list[str]:
    """The shared chunks dashboard.js imports statically (esbuild names them by hash):
    the template preloads them with the entry point, so they do not wait for it."""
    return sorted(p.name for p in BUILT.glob("chunk-*.js"))


def asset_version() -> str:
    """A short hash of the built entry points (recomputed when a rebuild changes them)."""
    stamps = tuple(_mtime(BUILT / name) for name in ENTRY_POINTS)
    return _version(stamps)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@lru_cache(maxsize=4)
def _version(stamps: tuple[int, ...]) -> str:
    digest = hashlib.sha256()
    for name in ENTRY_POINTS:
        path = BUILT / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


def dashboard_context(
    site: Site,
    *,
    embed: bool,
    share: bool,
    api_token: str | None,
    goals: Sequence[Goal] = (),
    empty: bool = False,
    base: str = "",
    imported: bool = False,
    funnels: Sequence[Funnel] = (),
    segments: Sequence[Segment] = (),
) -> dict[str, Any]:
    """Template context of app/ui/templates/dashboard.html.

    embed: no chrome (for an <iframe>); share: read-only, no settings links; api_token:
    every API request of the page sends `Authorization: Bearer <api_token>` (None: the
    session cookie authenticates). goals: the site's goals by name (the Goals panel asks
    the API about each). empty: the site has no events yet, so the page shows the snippet
    (loaded from `base`). imported: the site has imported aggregates (Plausible's export),
    so the page offers the switch that adds them (?with_imported=true). funnels: the
    site's funnels (the Goals panel's Funnels tab asks /api/v1/stats/funnel). segments: the
    site's saved filter sets (the filter menu lists them; none on share links)."""
    return {
        "site": site,
        "embed": embed,
        "share": share,
        "api_token": api_token,
        "goal_names": [g.name for g in goals],
        "funnels": [{"id": f.id, "name": f.name} for f in funnels],
        "segments": [s.public() for s in segments],
        "empty": empty,
        "base": base,
        "imported": imported,
        "preload": preload_chunks(),
        "version": asset_version(),
    }
