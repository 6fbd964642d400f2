"""An import's session ids (issue #22): negative (live sessions count up from 1), 2^40 ids
per import seq, so its raw events are the site's events whose session_id lies in its
range, on either events store."""

from __future__ import annotations

SEQ_BITS = 40
MAX_SESSIONS = (1 << SEQ_BITS) - 1


def session_id(seq: int, n: int) -> int:
    """The n-th session (1-based) of import seq: -(seq * 2^40 + n)."""
    return -((seq << SEQ_BITS) + n)


def session_range(seq: int) -> tuple[int, int]:
    """(lowest, highest) session id of import seq."""
    return session_id(seq, MAX_SESSIONS), session_id(seq, 1)
