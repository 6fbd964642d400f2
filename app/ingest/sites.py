"""Sites as the ingest path sees them: an in-memory directory, reloaded when SQLite changes."""

from __future__ import annotations

import threading
import time

from app.ingest.shields import Shields
from app.storage.exclusions import all_rules
from app.storage.meta import MetaStore, Site

# How often a lookup checks whether another writer changed SQLite (a rule or a site changed
# by the command line, or by a request that didn't reload): changes apply within this.
RECHECK_SECONDS = 2.0


class SiteDirectory:
    """Lookups by id and domain cost a dict hit. A miss reloads only when the SQLite file
    changed since the last load (another process, e.g. `avocet site add`, wrote to it), so
    a flood of unknown ids can't turn into a flood of queries; a hit checks the same at
    most every RECHECK_SECONDS, so a changed rule or a deleted site applies within that."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta
        self._by_id: dict[str, Site] = {}
        self._by_domain: dict[str, Site] = {}
        self._shields: dict[str, Shields] = {}
        self._version = -1
        self._checked = 0.0
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._version = self._meta.data_version()
            self._checked = time.monotonic()
            sites = self._meta.sites()
            rules = all_rules(self._meta)
            self._by_id = {s.id: s for s in sites}
            self._by_domain = {s.domain: s for s in sites}
            self._shields = {site_id: Shields(r) for site_id, r in rules.items()}

    def _maybe_reload(self) -> bool:
        self._checked = time.monotonic()
        if self._meta.data_version() == self._version:
            return False
        self.reload()
        return True

    def _recheck(self) -> None:
        if time.monotonic() - self._checked >= RECHECK_SECONDS:
            self._maybe_reload()

    def by_id(self, site_id: str) -> Site | None:
        self._recheck()
        site = self._by_id.get(site_id)
        if site is None and self._maybe_reload():
            site = self._by_id.get(site_id)
        return site

    def by_domain(self, domain: str) -> Site | None:
        self._recheck()
        key = domain.strip().lower().removeprefix("www.")
        site = self._by_domain.get(key)
        if site is None and self._maybe_reload():
            site = self._by_domain.get(key)
        return site

    def shields(self, site_id: str) -> Shields | None:
        """The site's exclusion rules; None when it has none (most sites)."""
        return self._shields.get(site_id)

    def all(self) -> list[Site]:
        self._maybe_reload()
        return list(self._by_id.values())
