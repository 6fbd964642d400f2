"""What "verify installation" shows when events don't arrive: why a site's hits were dropped
(counts and the last time, never an address or a user agent), and the symptom of a reverse
proxy whose address is taken for every visitor's."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import time

import msgspec

log = logging.getLogger("avocet.ingest")

# What each drop reason means to someone installing the snippet (keys: Drop values).
EXPLAINED = {
    "bot": "sent by a bot or a command-line client (its User-Agent); a browser's counts",
    "rate_limited": "over the per-visitor or per-site rate limit (limits.collect_*)",
    "unknown_site": "from a page on this domain, naming a site id or domain that does not exist"
    " (check data-site / data-domain in the snippet)",
    "invalid": "the page URL is not http(s) (e.g. file:), or the body could not be read",
    "no_session": "an engagement ping whose pageview this server never saw",
    "excluded": "matched one of the site's exclusion rules",
}
# Reasons a site may collect; more are ignored, so a caller can't grow the table.
MAX_REASONS = 16


class DropCount(msgspec.Struct, frozen=True):
    reason: str
    count: int
    last_at: int  # unix seconds
    explanation: str


class DropLog:
    """Per site: how many hits were dropped for each reason since the server started, and
    when the last one was. In memory only: a restart starts from zero."""

    def __init__(self) -> None:
        self._sites: dict[str, dict[str, list[int]]] = {}

    def _slot(self, site_id: str, reason: str) -> list[int] | None:
        """[hits, last at] of the site's reason (None: past MAX_REASONS reasons)."""
        reasons = self._sites.setdefault(site_id, {})
        found = reasons.get(reason)
        if found is None and len(reasons) < MAX_REASONS:
            found = reasons[reason] = [0, 0]
        return found

    def count(self, site_id: str, reason: str) -> None:
        if found := self._slot(site_id, reason):
            found[0] += 1
            found[1] = int(time.time())

    def of(self, site_id: str) -> list[DropCount]:
        """The site's drop reasons, the most recent first."""
        reasons = self._sites.get(site_id, {})
        rows = [
            DropCount(reason, n, last, EXPLAINED.get(reason, reason))
            for reason, (n, last) in reasons.items()
        ]
        return sorted(rows, key=lambda r: (-r.last_at, r.reason))

    def forget(self, site_id: str) -> None:
        self._sites.pop(site_id, None)

    def drain(self) -> dict[str, dict[str, list[int]]]:
        """Every count since the last drain ({site: {reason: [hits, last at]}}), and start
        again from zero: what a collector sends the control plane."""
        taken, self._sites = self._sites, {}
        return taken

    def merge(self, counts: dict[str, dict[str, list[int]]]) -> None:
        """Add another node's counts (drain()'s) to these: hits summed, the later last."""
        for site_id, reasons in counts.items():
            for reason, (hits, last) in reasons.items():
                if found := self._slot(site_id, reason):
                    found[0] += hits
                    found[1] = max(found[1], last)


# The proxy symptom: judged over windows of this many hits; raised when at least this share
# of a window came from one private (not loopback) address. A real audience is never one
# address; a reverse proxy on Docker's network whose address isn't trusted looks exactly so.
WINDOW_HITS = 200
SHARE = 0.9
# Private ranges named in the advice (the address itself is never kept).
RANGES = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10")
)


# IPv4 first octets no private or loopback network starts with (ipaddress's is_private
# networks start with 0, 10, 127, 169, 172, 192, 198, 203 or 240-255; 100 is left to the
# full check too, for 100.64.0.0/10).
_PUBLIC_FIRST_OCTETS = frozenset(
    str(n) for n in range(1, 240) if n not in {10, 100, 127, 169, 172, 192, 198, 203}
)


class ProxySymptom:
    """Watches the client addresses of tracking hits for "many hits, one private address".

    Holds no address: only a keyed hash of the first private one seen in the current window
    (the key is random per process, so it can't be matched against anything outside it)."""

    def __init__(self) -> None:
        self._key = os.urandom(16)
        self._seen = 0
        self._candidate: bytes | None = None
        self._range = ""
        self._hits = 0
        self.warning: str | None = None
        self._logged_at = 0.0

    def observe(self, ip: str) -> None:
        """Count one hit from this client address (as resolved through trusted proxies)."""
        self._seen += 1
        self._match(ip)
        if self._seen >= WINDOW_HITS:
            self._judge()

    def _match(self, ip: str) -> None:
        first, dot, _ = ip.partition(".")
        if dot and first in _PUBLIC_FIRST_OCTETS:
            return  # a public IPv4 address: most hits, without a parse (~5 µs)
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return
        if not address.is_private or address.is_loopback:
            return
        digest = hashlib.blake2b(ip.encode(), key=self._key, digest_size=8).digest()
        if self._candidate is None:
            self._candidate = digest
            self._range = next((str(n) for n in RANGES if address in n), str(address))
        if digest == self._candidate:
            self._hits += 1

    def _judge(self) -> None:
        if self._hits >= SHARE * self._seen:
            self.warning = (
                f"{self._hits} of the last {self._seen} tracking hits came from one private"
                f" address (in {self._range}): every visitor looks like one, with no country."
                " A reverse proxy (e.g. on Docker's network) whose address is not trusted?"
                f' Add its network to trusted_proxies, e.g. AVOCET_TRUSTED_PROXIES="{self._range}",'
                " and make it send X-Forwarded-For."
            )
            if not self._logged_at or time.monotonic() - self._logged_at > 3600:
                self._logged_at = time.monotonic()  # once an hour while it lasts
                log.warning(self.warning)
        else:
            self.warning = None
        self._seen = self._hits = 0
        self._candidate = None
