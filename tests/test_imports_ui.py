"""The Imports page (#22) over plain HTTP against the live app: owners and admins only (a
viewer gets 403 and no tab), the upload refuses a missing CSRF token and starts nothing,
and an import overlapping a day of native data is refused with the choice named, then
imported with "skip those days" (numbers by hand from tests/fixtures/imports/
goatcounter-v2.csv, see tests/test_imports.py: 2025-03-02 holds 2 of its 7 events)."""

from __future__ import annotations

import html
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.imports.build import Record, build_rows
from app.imports.sources import AVAILABLE
from app.storage import import_jobs
from app.storage.accounts import Role
from tests.accounts_fixtures import World, world_fixture  # noqa: F401
from tests.test_ui_forms import sign_in_ui

GOAT = Path(__file__).parent / "fixtures" / "imports" / "goatcounter-v2.csv"
OWNER, ADMIN, VIEWER = "owner@example.com", "admin@example.com", "viewer@example.com"


@pytest.fixture
def site_id(world: World) -> str:
    owner, admin, viewer = world.user(OWNER), world.user(ADMIN), world.user(VIEWER)
    roles: dict[str, Role] = {admin.id: "admin", viewer.id: "viewer"}
    return world.site("shop.test", owner, **roles)


def _upload(http: httpx.Client, site_id: str, csrf: str | None, **fields: str) -> httpx.Response:
    data = {"source": "goatcounter", **fields}
    if csrf is not None:
        data["csrf_token"] = csrf
    with GOAT.open("rb") as f:
        return http.post(
            f"/ui/sites/{site_id}/imports",
            data=data,
            files={"file": (GOAT.name, f, "text/csv")},
        )


def _finished(world: World, job_id: str) -> import_jobs.ImportJob:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = import_jobs.get_job(world.meta, job_id)
        if job.status not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"import {job_id} did not finish")


def test_only_owners_and_admins_see_and_use_the_page(world: World, site_id: str) -> None:
    viewer, viewer_csrf = sign_in_ui(world, VIEWER)
    assert viewer.get(f"/ui/sites/{site_id}/imports").status_code == 403
    assert _upload(viewer, site_id, viewer_csrf).status_code == 403
    assert f"/ui/sites/{site_id}/imports" not in viewer.get(f"/ui/sites/{site_id}").text
    assert import_jobs.list_jobs(world.meta, site_id) == []

    admin, admin_csrf = sign_in_ui(world, ADMIN)
    shown = admin.get(f"/ui/sites/{site_id}/imports")
    assert shown.status_code == 200
    assert f'href="/ui/sites/{site_id}/imports" aria-current="page"' in shown.text
    refused = _upload(admin, site_id, None)
    assert refused.status_code == 403
    assert import_jobs.list_jobs(world.meta, site_id) == []
    wrong = _upload(admin, site_id, admin_csrf, source="matomo")
    assert wrong.status_code == 400
    assert f'id="e-source" >One of {", ".join(AVAILABLE)}.</p>' in wrong.text
    assert import_jobs.list_jobs(world.meta, site_id) == []


def test_overlapping_native_day_is_refused_then_skipped(world: World, site_id: str) -> None:
    # One native event (a live session id, >= 0) on 2025-03-02.
    native = build_rows(
        [Record(1_740_906_000_000_000, "v", None, "pageview", "https://shop.test/x")],
        site_id,
        ZoneInfo("UTC"),
        1,
        b"k" * 32,
        Counter(),
    ).table.to_pylist()[0]
    world.live.services.events.append([tuple({**native, "session_id": 1}.values())])
    owner, csrf = sign_in_ui(world, OWNER)

    asked = _upload(owner, site_id, csrf)
    assert asked.status_code == 303
    job_id = asked.headers["location"].split("job=")[1].split("#")[0]
    job = _finished(world, job_id)
    assert job.status == "failed"
    assert job.error == (
        "1 of the import's 2 days already have data of the site (2025-03-02 .. 2025-03-02):"
        " choose --overlap skip (import only the other days) or --overlap keep-both (add the"
        " import to them)"
    )
    page = html.unescape(owner.get(f"/ui/sites/{site_id}/imports").text)
    assert "Choose what to do with the overlapping days above and upload the file again." in page

    skipped = _upload(owner, site_id, csrf, overlap="skip")
    job = _finished(world, skipped.headers["location"].split("job=")[1].split("#")[0])
    assert job.status == "done"
    assert job.summary is not None
    assert (job.summary["events_imported"], job.summary["sessions"], job.summary["days"]) == (
        5,
        3,
        1,
    )
    assert job.summary["skipped"] == {
        "bot (GoatCounter's Bot column)": 1,
        "day already has native data (--overlap skip)": 2,
    }
    page = html.unescape(owner.get(f"/ui/sites/{site_id}/imports").text)
    assert "overlapping days: skipped" in page
    assert "<li>2 — day already has native data (--overlap skip)</li>" in page
