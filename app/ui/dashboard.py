"""The dashboard page's context: what the template and its scripts need to know.

The dashboard is a client of the public stats API. The server renders a shell and hands
the scripts the site, how to authenticate (the signed-in session's cookie, or a bearer
token such as a share link's) and whether the page is a share or an embed; the scripts
read these from data- attributes of one root element (`#dashboard`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.storage.goals import Goal
from app.storage.meta import Site


def dashboard_context(
    site: Site,
    *,
    embed: bool,
    share: bool,
    api_token: str | None,
    goals: Sequence[Goal] = (),
    empty: bool = False,
    base: str = "",
) -> dict[str, Any]:
    """Template context of app/ui/templates/dashboard.html.

    embed: no chrome (for an <iframe>); share: read-only, no settings links; api_token:
    every API request of the page sends `Authorization: Bearer <api_token>` (None: the
    session cookie authenticates). goals: the site's goals by name (the Goals panel asks
    the API about each). empty: the site has no events yet, so the page shows the snippet
    (loaded from `base`)."""
    return {
        "site": site,
        "embed": embed,
        "share": share,
        "api_token": api_token,
        "goal_names": [g.name for g in goals],
        "empty": empty,
        "base": base,
    }
