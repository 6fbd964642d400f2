"""PLACEHOLDER until the classifier lands (being written in parallel)."""

from __future__ import annotations

from typing import NamedTuple


class Acquisition(NamedTuple):
    referrer: str | None
    source: str | None
    channel: str


def classify(
    referrer_host: str | None,
    page_host: str | None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    ref: str | None = None,
    click_id: str | None = None,
) -> Acquisition:
    host = referrer_host.removeprefix("www.") if referrer_host else None
    if host == page_host:
        host = None
    source = utm_source or ref or host
    return Acquisition(host, source, "Referral" if source else "Direct")
