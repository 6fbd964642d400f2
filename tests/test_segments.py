"""Segments (SPEC §7): a site's saved filter sets through the sites API: saved by editors
with their filters checked key by key (unknown keys, empty values, none at all refused),
listed by name, deleted; a reader can list but not save."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts_fixtures import World, auth_settings, running_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, run_jobs=False)) as found:
        yield found


def test_segments_are_saved_checked_listed_and_deleted(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    http = world.bearer(world.key(owner, site, scopes=("sites:read", "sites:write")))
    path = f"/api/v1/sites/{site}/segments"
    made = http.post(
        path, json={"name": "Germany, not Google", "filters": "country=DE&source!=Google"}
    )
    assert made.status_code == 201, made.text
    first = made.json()["segment"]
    assert first["filters"] == "country=DE&source!=Google"
    other = {"name": "Blog readers", "filters": "?page~=blog&prop:plan=pro|team"}
    assert (
        http.post(path, json=other).json()["segment"]["filters"] == "page~=blog&prop:plan=pro|team"
    )
    listed = http.get(path).json()["segments"]
    assert [s["name"] for s in listed] == ["Blog readers", "Germany, not Google"]

    def refused(body: dict[str, Any]) -> tuple[int, str]:
        answer = http.post(path, json=body)
        return answer.status_code, answer.json()["error"]["message"]

    assert refused({"name": "x", "filters": "colour=red"}) == (
        400,
        "filters: 'colour' is not a filter",
    )
    assert refused({"name": "x", "filters": "country="}) == (400, "filters: 'country' has no value")
    assert refused({"name": "x", "filters": ""}) == (
        400,
        "filters: a segment needs at least one filter",
    )
    assert refused({"name": " ", "filters": "country=DE"}) == (
        400, "name: give the segment a name (at most 80 characters)"
    )  # fmt: skip
    assert refused({"name": "Blog readers", "filters": "country=DE"}) == (
        409, "name: the site has a segment named 'Blog readers' already"
    )  # fmt: skip
    reader = world.bearer(world.key(owner, site, scopes=("sites:read",)))
    assert len(reader.get(path).json()["segments"]) == 2
    assert reader.post(path, json={"name": "r", "filters": "country=FR"}).status_code == 403
    assert http.delete(f"{path}/{first['id']}").status_code == 200
    assert http.delete(f"{path}/{first['id']}").status_code == 404
    assert [s["name"] for s in http.get(path).json()["segments"]] == ["Blog readers"]
