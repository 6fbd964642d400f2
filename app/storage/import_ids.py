"""What both events stores' imports share (issue #22): an import's session ids, negative
(live sessions count up from 1), 2^40 per import seq, so its raw events are the site's
events whose session_id lies in its range; and how its inventory reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SEQ_BITS = 40
MAX_SESSIONS = (1 << SEQ_BITS) - 1


def session_id(seq: int, n: int) -> int:
    """The n-th session (1-based) of import seq: -(seq * 2^40 + n)."""
    return -((seq << SEQ_BITS) + n)


def session_range(seq: int) -> tuple[int, int]:
    """(lowest, highest) session id of import seq."""
    return session_id(seq, MAX_SESSIONS), session_id(seq, 1)


def inventory(events: int, days: Sequence[Any], stats: Sequence[Any]) -> dict[str, Any]:
    """What an import holds (import_inventory, either store) from its raw events, its
    import_days row (count, rolled count, first, last, sum of events) and its
    imported_stats row (count, distinct days, first, last)."""
    return {
        "events": events,
        "events_in_rollups": int(days[4] or 0) - events,
        "days": int(days[0]) or int(stats[1]),
        "rolled_days": int(days[1]),
        "imported_rows": int(stats[0]),
        "first_day": days[2] if days[0] else stats[2],
        "last_day": days[3] if days[0] else stats[3],
    }
