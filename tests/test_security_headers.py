"""Every HTML page forbids framing and inline script (#17 items 9 and 14); no CDN docs UI."""

from __future__ import annotations

import pytest

from app.api.headers import PAGE_CSP
from tests.accounts_fixtures import World, world_fixture  # noqa: F401


@pytest.mark.parametrize("path", ["/ui/login", "/ui/setup", "/ui/nowhere"])
def test_pages_forbid_framing_and_inline_script_when_served(world: World, path: str) -> None:
    with world.client() as http:
        response = http.get(path, follow_redirects=True)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_CSP.decode()
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_api_answers_carry_no_page_policy_when_json(world: World) -> None:
    with world.client() as http:
        response = http.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs",
        "/api/docs/swagger",
        "/api/docs/redoc",
        "/api/docs/rapidoc",
        "/api/docs/elements",
        "/api/docs/stoplight",
        "/api/docs/scalar",
    ],
)
def test_no_documentation_ui_loads_cdn_scripts_when_asked(world: World, path: str) -> None:
    with world.client() as http:
        response = http.get(path)
    # Only the JSON document may answer there (its root serves it), or a plain 404.
    assert response.status_code in (200, 404)
    assert "<script" not in response.text.lower()
    if response.status_code == 200:
        assert response.json()["openapi"].startswith("3.1")


def test_openapi_document_is_still_served(world: World) -> None:
    with world.client() as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Avocet"
