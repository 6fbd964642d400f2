"""Sites as the ingest path sees them: an in-memory directory, reloaded when SQLite changes."""

from __future__ import annotations

import threading

from app.storage.meta import MetaStore, Site


class SiteDirectory:
    """Lookups by id and domain cost a dict hit. A miss reloads only when the SQLite file
    changed since the last load (another process, e.g. `avocet site add`, wrote to it), so
    a flood of unknown ids can't turn into a flood of queries."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta
        self._by_id: dict[str, Site] = {}
        self._by_domain: dict[str, Site] = {}
        self._version = -1
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._version = self._meta.data_version()
            sites = self._meta.sites()
            self._by_id = {s.id: s for s in sites}
            self._by_domain = {s.domain: s for s in sites}

    def _maybe_reload(self) -> bool:
        if self._meta.data_version() == self._version:
            return False
        self.reload()
        return True

    def by_id(self, site_id: str) -> Site | None:
        site = self._by_id.get(site_id)
        if site is None and self._maybe_reload():
            site = self._by_id.get(site_id)
        return site

    def by_domain(self, domain: str) -> Site | None:
        key = domain.strip().lower().removeprefix("www.")
        site = self._by_domain.get(key)
        if site is None and self._maybe_reload():
            site = self._by_domain.get(key)
        return site

    def all(self) -> list[Site]:
        self._maybe_reload()
        return list(self._by_id.values())
