"""Periods: a preset or custom dates, in a time zone, resolved to UTC bounds and local days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from app.errors import InvalidRequest

PRESETS = (
    "today",
    "yesterday",
    "24h",
    "7d",
    "30d",
    "90d",
    "12m",
    "1y",
    "wtd",
    "mtd",
    "ytd",
    "month",
    "custom",
    "all",
)
DEFAULT_PERIOD = "30d"


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved range: [start, end) in UTC, and the local days it covers (inclusive)."""

    preset: str
    timezone: str
    first_day: date
    last_day: date
    start: datetime  # UTC, naive
    end: datetime  # UTC, naive, exclusive
    rolling: bool = False  # 24h: bounds are instants, not local midnights

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def shifted(self, first_day: date, last_day: date) -> Period:
        """The same shape over other days (comparison periods)."""
        if self.rolling:
            delta = (self.last_day - first_day).days
            return msgspec.structs.replace(
                self,
                first_day=first_day,
                last_day=last_day,
                start=self.start - timedelta(days=delta + 1),
                end=self.end - timedelta(days=delta + 1),
            )
        return day_range(self.preset, ZoneInfo(self.timezone), first_day, last_day)


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant (naive) at which `day` starts in `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def day_range(preset: str, zone: ZoneInfo, first: date, last: date) -> Period:
    return Period(
        preset=preset,
        timezone=zone.key,
        first_day=first,
        last_day=last,
        start=local_midnight_utc(first, zone),
        end=local_midnight_utc(last + timedelta(days=1), zone),
    )


FIRST_YEAR, LAST_YEAR = 1900, 9000  # beyond these, UTC conversions overflow


def parse_day(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be a date in YYYY-MM-DD format") from exc
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidRequest(f"{name} must be between {FIRST_YEAR} and {LAST_YEAR}")
    return day


def resolve_period(
    preset: str | None,
    zone: ZoneInfo,
    now: datetime,
    date_from: str | None = None,
    date_to: str | None = None,
    first_event_day: date | None = None,
) -> Period:
    """Preset or custom range -> Period. `now` is an aware datetime."""
    if date_from is not None or date_to is not None:
        if preset not in (None, "custom"):
            raise InvalidRequest("from and to are only valid when period=custom")
        if not date_from or not date_to:
            raise InvalidRequest("period=custom requires both from and to (YYYY-MM-DD)")
        first, last = parse_day(date_from, "from"), parse_day(date_to, "to")
        if last < first:
            raise InvalidRequest("to must not be before from")
        if (last - first).days > 3660:
            raise InvalidRequest("a range may span at most 10 years")
        return day_range("custom", zone, first, last)
    preset = preset or DEFAULT_PERIOD
    if preset == "custom":
        raise InvalidRequest("period=custom requires both from and to (YYYY-MM-DD)")
    today = now.astimezone(zone).date()
    if preset == "24h":
        end = now.astimezone(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        end += timedelta(hours=1)
        start = end - timedelta(hours=24)
        first = start.replace(tzinfo=UTC).astimezone(zone).date()
        return Period(
            preset="24h",
            timezone=zone.key,
            first_day=first,
            last_day=today,
            start=start,
            end=end,
            rolling=True,
        )
    first, last = _preset_days(preset, today, first_event_day)
    return day_range(preset, zone, first, last)


def _preset_days(preset: str, today: date, first_event_day: date | None) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if preset in ("7d", "30d", "90d"):
        return today - timedelta(days=int(preset[:-1]) - 1), today
    if preset in ("12m", "1y"):
        return today - timedelta(days=364), today
    if preset == "wtd":
        return today - timedelta(days=today.weekday()), today
    if preset == "mtd":
        return today.replace(day=1), today
    if preset == "ytd":
        return today.replace(month=1, day=1), today
    if preset == "month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "all":
        return (first_event_day or today), today
    raise InvalidRequest(f"unknown period {preset!r}; one of {', '.join(PRESETS)}")


def previous_period(period: Period) -> Period:
    """The same number of days right before."""
    length = timedelta(days=period.days)
    return period.shifted(period.first_day - length, period.last_day - length)


def year_over_year(period: Period) -> Period:
    """The same dates one year earlier (Feb 29 -> Feb 28)."""
    return period.shifted(_year_back(period.first_day), _year_back(period.last_day))


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)
