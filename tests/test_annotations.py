"""Annotations (SPEC §7): a site's dated notes through the API: added by editors (a
reader and a bad day or text refused), listed for a period's days by the stats API (not
through a share link), deleted; a site's deletion lists them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.accounts_fixtures import World, auth_settings, running_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, run_jobs=False)) as found:
        yield found


def test_notes_are_added_listed_by_period_and_deleted(world: World) -> None:
    owner = world.user("owner@example.com")
    site = world.site("shop.test", owner)
    http = world.bearer(world.key(owner, site, scopes=("sites:read", "sites:write", "stats:read")))
    path = f"/api/v1/sites/{site}/annotations"
    ids = {}
    for day, text in (
        ("2026-11-02", "Launched  v2"),
        ("2026-11-20", "Outage"),
        ("2026-12-01", "Sale"),
    ):
        made = http.post(path, json={"date": day, "text": text})
        assert made.status_code == 201, made.text
        ids[text] = made.json()["annotation"]["id"]
    assert made.json()["annotation"] == {"id": ids["Sale"], "date": "2026-12-01", "text": "Sale"}

    def listed(**params: str) -> list[tuple[str, str]]:
        answer = http.get("/api/v1/stats/annotations", params={"site_id": site, **params})
        assert answer.status_code == 200, answer.text
        return [(n["date"], n["text"]) for n in answer.json()["results"]]

    november = {"period": "custom", "from": "2026-11-01", "to": "2026-11-30"}
    assert listed(**november) == [("2026-11-02", "Launched v2"), ("2026-11-20", "Outage")]
    assert listed(period="custom", **{"from": "2026-11-20", "to": "2026-12-01"}) == [
        ("2026-11-20", "Outage"),
        ("2026-12-01", "Sale"),
    ]

    def refused(body: dict[str, str]) -> tuple[int, str]:
        answer = http.post(path, json=body)
        return answer.status_code, answer.json()["error"]["message"]

    assert refused({"date": "yesterday", "text": "x"}) == (
        400, "date: not a YYYY-MM-DD day: 'yesterday'"
    )  # fmt: skip
    assert refused({"date": "2026-11-03", "text": "  "}) == (
        400, "text: write the note (at most 200 characters)"
    )  # fmt: skip
    assert refused({"date": "2026-11-03", "text": "x" * 201})[0] == 400
    reader = world.bearer(world.key(owner, site, scopes=("sites:read", "stats:read")))
    assert reader.post(path, json={"date": "2026-11-03", "text": "no"}).status_code == 403
    assert http.delete(f"{path}/{ids['Outage']}").status_code == 200
    assert http.delete(f"{path}/{ids['Outage']}").status_code == 404
    assert listed(**november) == [("2026-11-02", "Launched v2")]
    # Another site's key sees none of them.
    other = world.user("other@example.com")
    elsewhere = world.site("other.test", other)
    stranger = world.bearer(world.key(other, elsewhere, scopes=("stats:read",)))
    denied = stranger.get("/api/v1/stats/annotations", params={"site_id": site, **november})
    assert denied.status_code in (403, 404)
    gone = http.delete(f"/api/v1/sites/{site}")
    assert gone.json()["deletes"]["annotations"] == 2
