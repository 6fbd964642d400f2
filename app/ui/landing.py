"""Where a signed-in user lands (after sign-in, and at `/`) when no page was asked for."""

from __future__ import annotations

from app.services import Services
from app.storage.accounts import User
from app.ui.actions import visible_sites


def landing_path(svc: Services, user: User) -> str:
    """One visible site: its dashboard; none or several: the sites list."""
    sites = visible_sites(svc, user)
    return f"/ui/sites/{sites[0].id}" if len(sites) == 1 else "/ui/sites"
