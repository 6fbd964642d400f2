"""A site's exclusion rules ("shields"), compiled for ingest: which rule, if any, drops a
hit. Checked before anything of the hit is stored; only a count per reason is kept."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

# The reasons a hit is dropped, one per rule kind (the exclusion counters' keys).
REASONS = ("ip", "hostname", "page", "country")


def pattern_regex(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of the patterns whole, `*` standing for any characters (as
    in goals and the native API's page filters); None for no pattern."""
    parts = ["(?:" + ".*".join(map(re.escape, p.split("*"))) + ")" for p in patterns]
    return re.compile("|".join(parts), re.S) if parts else None


def network_range(network: str) -> tuple[int, int, int]:
    """(IP version, first address, last address) of a network in CIDR form."""
    net = ipaddress.ip_network(network, strict=False)
    return net.version, int(net.network_address), int(net.broadcast_address)


class Shields:
    """One site's rules. Rule values are the owner's (a network, host and path patterns,
    country codes); nothing of a dropped hit is kept but the count of its reason."""

    __slots__ = ("countries", "hosts", "pages", "ranges")

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        """rules: (kind, value) as stored (app/storage/exclusions.py validated them)."""
        by_kind: dict[str, list[str]] = {kind: [] for kind in REASONS}
        for kind, value in rules:
            by_kind[kind].append(value)
        self.ranges = tuple(network_range(n) for n in by_kind["ip"])
        self.hosts = pattern_regex(by_kind["hostname"])
        self.pages = pattern_regex(by_kind["page"])
        self.countries = frozenset(by_kind["country"])

    def reason(
        self,
        ip: str,
        hostname: str | None,
        pathname: str,
        country_of: Callable[[str], str | None],
    ) -> str | None:
        """The kind of the first rule that drops this hit, or None to keep it. Hostnames
        are an allow-list: with any, a hit from another host (or none) is dropped."""
        if self.ranges and ip and _in_ranges(ip, self.ranges):
            return "ip"
        if self.hosts is not None and not (hostname and self.hosts.fullmatch(hostname)):
            return "hostname"
        if self.pages is not None and self.pages.fullmatch(pathname):
            return "page"
        if self.countries and ip and country_of(ip) in self.countries:
            return "country"
        return None


def _in_ranges(ip: str, ranges: tuple[tuple[int, int, int], ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:203.0.113.7 is 203.0.113.7
    value = int(address)
    return any(v == address.version and lo <= value <= hi for v, lo, hi in ranges)
