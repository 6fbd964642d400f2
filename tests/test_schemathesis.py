"""Schemathesis against /openapi.json: every route answers only the statuses it documents,
each body (2xx and error envelopes alike) matches its schema and content type, and none
answers 5xx. Each generated request is sent three ways: anonymous, with an instance admin's
all-scopes key, and with that key and the generated site id swapped for a real site's (so
the 2xx, 403, 404, 409 and 422 paths behind authentication are reached, not only 401)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.accounts_fixtures import ALL_SCOPES, World, auth_settings
from tests.conftest import start_live_server, stop_live_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
# Enough to reach each route's error paths; the whole file stays under ~30 s on 2 cores.
EXAMPLES = 6
SITE_PARAMS = ("site_id", "project_id", "website_id")
# Not sent with the admin key: a backup copies the whole data dir per example, and deleting
# the real site would leave the routes after it nothing to reach but 404.
ANONYMOUS_ONLY = {("POST", "/api/v1/admin/backup")}
KEEP_SITE = {("DELETE", "/api/v1/sites/{site_id}")}


class Target:
    def __init__(self, url: str, token: str, site_id: str) -> None:
        self.url, self.token, self.site_id = url, token, site_id


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    live = start_live_server(auth_settings(tmp, run_jobs=False))
    world = World(live)
    admin = world.user("admin@example.com", admin=True)
    site_id = world.site("schemathesis.example", admin)
    token = world.key(admin, None, (*ALL_SCOPES, "sites:write"))
    try:
        yield Target(live.url, token, site_id)
    finally:
        stop_live_server(live)


def _with_real_site(case: schemathesis.Case, site_id: str) -> bool:
    """Point the case at the real site; False when it names no site."""
    swapped = False
    for params in (case.path_parameters, case.query):
        for name in SITE_PARAMS:
            if params is not None and name in params:
                params[name] = site_id
                swapped = True
    if isinstance(case.body, dict) and "site_id" in case.body:
        case.body["site_id"] = site_id
        swapped = True
    return swapped


def _explore(operation: Any, target: Target) -> None:
    """Send EXAMPLES generated requests three ways; raises on the first failed check."""
    key = (operation.method.upper(), operation.path)
    bearer = {"Authorization": f"Bearer {target.token}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)
        if key in ANONYMOUS_ONLY:
            return
        case.call_and_validate(headers=bearer, checks=CHECKS)
        if key not in KEEP_SITE and _with_real_site(case, target.site_id):
            case.call_and_validate(headers=bearer, checks=CHECKS)

    check()


def test_every_route_answers_only_documented_statuses_and_schemas(target: Target) -> None:
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50
    failures = []
    for operation in operations:
        try:
            _explore(operation, target)
        # schemathesis' FailureGroup is a BaseExceptionGroup; collect every failing route
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert failures == [], "\n\n".join(failures)


def test_every_error_status_is_documented_with_its_envelope(target: Target) -> None:
    import httpx

    document: dict[str, Any] = httpx.get(f"{target.url}/openapi.json").json()
    paths = document["paths"]
    login = paths["/api/v1/auth/login"]["post"]["responses"]
    assert sorted(login) == ["200", "400", "401", "403", "413", "429"]
    goals = paths["/api/v1/sites/{site_id}/goals"]["post"]["responses"]
    assert sorted(goals) == ["201", "400", "401", "403", "404", "409", "413", "429"]
    aggregate = paths["/api/v1/stats/aggregate"]["get"]["responses"]
    assert sorted(aggregate) == ["200", "400", "401", "403", "404", "422", "429"]
    assert sorted(paths["/collect"]["post"]["responses"]) == ["204"]
    error = aggregate["404"]["content"]["application/json"]["schema"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    event = paths["/api/event"]["post"]["responses"]
    assert sorted(event) == ["202", "400", "429", "503"]
    assert event["429"]["content"]["application/json"]["schema"]["required"] == ["errors"]
