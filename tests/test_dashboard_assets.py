"""How the dashboard page asks for its built assets (issue #18's performance work): every
chunk dashboard.js imports statically is preloaded with it (no waterfall), the entry points
carry ?v=<hash of their bytes>, and everything under /ui/static/dashboard/ (hashed names
or versioned URLs) is cached by browsers for a year, unlike the settings UI's files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from app.storage.shares import add_share_link
from tests.conftest import LiveServer

BUILT = Path(__file__).resolve().parents[1] / "static" / "ui" / "dashboard"
YEAR = "max-age=31536000, public, immutable"


def _page(live_server: LiveServer) -> str:
    site = live_server.add_site("shop.example")
    link = add_share_link(live_server.services.meta, site_id=site, name="x", created_by=None)
    response = httpx.get(f"{live_server.url}/share/{link.token}")
    assert response.status_code == 200
    return response.text


def test_dashboard_page_preloads_chunks_and_versions_entry_points(
    live_server: LiveServer,
) -> None:
    html = _page(live_server)
    main = (BUILT / "dashboard.js").read_text()
    chunks = sorted(set(re.findall(r'from"\./(chunk-[A-Z0-9]+\.js)"', main)))
    assert chunks, "dashboard.js imports no shared chunk: this test checks nothing"
    preloaded = re.findall(r'<link rel="modulepreload" href="/ui/static/dashboard/([^"]+)">', html)
    assert preloaded == chunks
    digest = hashlib.sha256()
    for name in ("dashboard.js", "dashboard.css"):
        digest.update((BUILT / name).read_bytes())
    version = digest.hexdigest()[:12]
    assert f'src="/ui/static/dashboard/dashboard.js?v={version}"' in html
    assert f'href="/ui/static/dashboard/dashboard.css?v={version}"' in html


def test_dashboard_assets_cached_for_a_year_when_served(live_server: LiveServer) -> None:
    main = (BUILT / "dashboard.js").read_text()
    chunk = re.findall(r'from"\./(chunk-[A-Z0-9]+\.js)"', main)[0]
    map_chunk = re.findall(r'import\("\./(map-[A-Z0-9]+\.js)"\)', main)[0]
    # The map's shapes are projected at build time, inside its chunk: no atlas to fetch.
    assert not list(BUILT.glob("*.json"))
    for name in ("dashboard.js", "dashboard.css", chunk, map_chunk):
        response = httpx.get(f"{live_server.url}/ui/static/dashboard/{name}")
        assert response.status_code == 200, name
        assert response.headers["cache-control"] == YEAR, name
    # The settings UI's files keep their names: no long caching for them.
    settings_css = httpx.get(f"{live_server.url}/ui/static/app.css")
    assert settings_css.status_code == 200
    assert "immutable" not in settings_css.headers.get("cache-control", "")
