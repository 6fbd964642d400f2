"""The import sources by name, each a parser of files into records."""

from __future__ import annotations

from app.errors import InvalidRequest
from app.imports.run import Source
from app.storage.meta import Site

# The sources `avocet import` and the API accept (issue #22).
AVAILABLE: tuple[str, ...] = ("plausible", "goatcounter", "umami", "ga4")


def source_for(name: str, site: Site, options: dict[str, str] | None = None) -> Source:
    """The parser of a source for a site (options: e.g. Umami's website id)."""
    options = options or {}
    if name == "plausible":
        from app.imports.plausible import run_aggregate

        return Source("plausible", lambda paths, skipped: iter(()), aggregate=run_aggregate)
    if name == "goatcounter":
        from app.imports import goatcounter

        return goatcounter.source(site.domain)
    if name == "umami":
        from app.imports import umami

        return umami.source(site.domain, options.get("website") or None)
    if name == "ga4":
        from app.imports import ga4

        return ga4.source(site.domain)
    raise InvalidRequest(f"unknown import source {name!r}: {', '.join(AVAILABLE)}")
