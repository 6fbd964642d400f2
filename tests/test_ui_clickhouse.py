"""The settings UI on ClickHouse (issue #24): every page of a site answers 200 on the
ClickHouse store, with an import done (the Imports page's inventory and the Data page's
counts come from that store), and "verify installation" counts the hits an exclusion rule
dropped (read from ClickHouse's excluded_counts: a DuckDB-only query there was a 500)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import World, auth_settings, running_world
from tests.conftest import CHROME_UA
from tests.test_ui_forms import sign_in_ui

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("chdb") is None, reason="the clickhouse extra is not installed"
)
GOAT = Path(__file__).parent / "fixtures" / "imports" / "goatcounter-v2.csv"
OWNER = "owner@example.com"


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    with running_world(auth_settings(tmp_path, storage="clickhouse")) as found:
        yield found


def test_every_site_page_answers_on_clickhouse(world: World) -> None:
    owner = world.user(OWNER, admin=True)
    site = world.site("example.com", owner)
    api = world.bearer(world.key(owner, site, ("sites:read", "sites:write")))
    with GOAT.open("rb") as f:
        started = api.post(f"/api/v1/sites/{site}/imports", data={"source": "goatcounter"},
                           files={"file": (GOAT.name, f)})  # fmt: skip
    assert started.status_code == 202, started.text
    for _ in range(200):
        job = api.get(f"/api/v1/sites/{site}/imports/{started.json()['id']}").json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    rule = api.post(f"/api/v1/sites/{site}/exclusions", json={"type": "page", "value": "/admin/**"})
    assert rule.status_code == 201, rule.text
    dropped = httpx.post(f"{world.live.url}/collect", json={"n": "pageview", "s": site,
                         "u": "https://example.com/admin/users"},
                         headers={"User-Agent": CHROME_UA})  # fmt: skip
    assert dropped.status_code == 204

    ui, _ = sign_in_ui(world, OWNER)
    pages = ["", "/data", "/delete", "/exclusions", "/goals", "/imports", "/install",
             "/members", "/settings", "/sharing"]  # fmt: skip
    for page in pages:
        answer = ui.get(f"/ui/sites/{site}{page}")
        assert answer.status_code == 200, (page, answer.text[:300])
    assert "goatcounter" in ui.get(f"/ui/sites/{site}/imports").text
    deadline = time.monotonic() + 10  # the counter rides with the next commit
    while True:
        recent = ui.get(f"/ui/sites/{site}/recent")
        assert recent.status_code == 200, recent.text[:300]
        if recent.json()["excluded"]["page"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert recent.json()["excluded"] == {"ip": 0, "hostname": 0, "page": 1, "country": 0}
