"""A site's retention: its own days, or the instance's defaults, within the instance's
limits (config: raw_retention_days, [retention])."""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from app.config import Settings
from app.errors import InvalidRequest
from app.storage.meta import Site


class Retention(NamedTuple):
    raw_days: int  # raw events; older days are answered from rollups
    total_days: int  # everything; 0: forever


MAX_RETENTION_DAYS = 100_000  # ~270 years: N days before today stays a date; 0 = forever


def _capped(days: int, limit: int) -> int:
    """days within the limit (0: none); 0 days = forever, which a limit caps too."""
    if not limit:
        return days
    return limit if days == 0 else min(days, limit)


def retention_of(site: Site, settings: Settings) -> Retention:
    """What the prune job keeps for the site."""
    limits = settings.retention
    total = _capped(
        site.retention_days if site.retention_days is not None else limits.total_days,
        limits.max_total_days,
    )
    raw = _capped(
        site.raw_retention_days
        if site.raw_retention_days is not None
        else settings.raw_retention_days,
        limits.max_raw_days,
    )
    return Retention(raw if not total else min(raw, total), total)


def retained_from(site: Site, settings: Settings, today: date) -> date | None:
    """The site's first day still kept (None: forever): the day from which stats count."""
    total = retention_of(site, settings).total_days
    return today - timedelta(days=total - 1) if total else None


def check_retention(settings: Settings, raw_days: int | None, total_days: int | None) -> None:
    """InvalidRequest unless a site may keep these (None: the instance's default)."""
    limits = settings.retention
    raw = raw_days if raw_days is not None else settings.raw_retention_days
    total = total_days if total_days is not None else limits.total_days
    if raw_days is not None and raw_days < 1:
        raise InvalidRequest("raw_retention_days: at least 1 day")
    if total_days is not None and total_days < 0:
        raise InvalidRequest("retention_days: 0 (forever) or a number of days")
    # Past this, "N days before today" leaves the calendar (a 500 before the bound).
    for name, days in (("raw_retention_days", raw_days), ("retention_days", total_days)):
        if days is not None and days > MAX_RETENTION_DAYS:
            raise InvalidRequest(f"{name}: at most {MAX_RETENTION_DAYS} days")
    if limits.max_raw_days and raw_days is not None and raw_days > limits.max_raw_days:
        raise InvalidRequest(f"raw_retention_days: at most {limits.max_raw_days} days here")
    if (
        limits.max_total_days
        and total_days is not None
        and not 0 < total_days <= limits.max_total_days
    ):
        raise InvalidRequest(f"retention_days: at most {limits.max_total_days} days here")
    if total and raw > total:
        raise InvalidRequest(
            f"raw_retention_days: can't exceed retention_days ({raw} > {total}): raw events"
            " are part of what is kept"
        )
