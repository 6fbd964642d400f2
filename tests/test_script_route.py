"""The tracker is served with caching headers and open CORS at all three paths."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ROOT, LiveServer


@pytest.mark.parametrize("path", ["/script.js", "/js/script.js", "/z.js"])
def test_script_is_served_with_etag_and_cache_headers(live_server: LiveServer, path: str) -> None:
    response = httpx.get(f"{live_server.url}{path}")
    assert response.status_code == 200
    assert response.content == (ROOT / "static" / "script.js").read_bytes()
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["cache-control"] == "public, max-age=3600, must-revalidate"
    assert response.headers["access-control-allow-origin"] == "*"
    etag = response.headers["etag"]
    again = httpx.get(f"{live_server.url}{path}", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
