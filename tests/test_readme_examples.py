"""Every README ```sh block that calls curl against the local server runs, verbatim, against a
live server: only the placeholders (SITE_ID, $KEY, PASSWORD, ...) and the port are replaced.
Each block's curl answers must have the statuses listed here, and the tracking examples must
really store their events (a 204 alone would hide curl's User-Agent being dropped as a bot)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from app.auth.signin import set_totp
from app.auth.twofactor import new_secret
from tests.accounts_fixtures import ALL_SCOPES, PASSWORD, World, auth_settings
from tests.conftest import LiveServer, start_live_server, stop_live_server

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOCAL = "http://127.0.0.1:8000"
ADMIN = "you@example.com"
TWO_FACTOR = "2fa@example.com"

# The statuses of each block's curl commands, in order, keyed by the block's first command
# line. A new curl example in the README must be added here (the test fails until it is).
EXPECTED: dict[str, list[int]] = {
    "curl -X POST http://127.0.0.1:8000/collect": [204, 202, 200],
    'curl -H "Authorization: Bearer $KEY"': [200] * 6,
    "curl -X POST http://127.0.0.1:8000/api/v2/query": [200],
    'curl "http://127.0.0.1:8000/v1/projects/SITE_ID/pageviews': [200],
    'curl "http://127.0.0.1:8000/api/external/v1/analytics/SITE_ID': [200],
    'curl "http://127.0.0.1:8000/api/v1/stats?site_id=SITE_ID': [200],
    "curl -s -H 'Content-Type: application/json'": [200],
    "CSRF=$(curl -s -c cookies": [200, 201, 200, 200],
    "curl -X POST http://127.0.0.1:8000/api/v1/events": [202] * 5,
    'curl -H "Authorization: Bearer $KEY" "http://127.0.0.1:8000/plausible/': [200] * 4,
    "curl -X PUT http://127.0.0.1:8000/plausible/api/v1/sites/goals": [200] * 3,
    'curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8000/api/v1/sites/SITE_ID/privacy': [
        200,
        202,
        200,
    ],
}

# Records each curl's status line (from its dumped headers) while leaving its output alone,
# so pipes and $(...) in the examples work as written.
WRAPPER = """
curl() {
  command curl -sS -D "$HEADERS/$(date +%s%N)" "$@"
}
"""


def curl_blocks() -> list[str]:
    """The README's sh blocks that call curl against the local server, in order."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    return [b for b in blocks if "curl" in b and "127.0.0.1:8000" in b]


def first_command(block: str) -> str:
    lines = [line for line in block.splitlines() if line and not line.startswith(("#", "KEY="))]
    return lines[0]


def expected_for(block: str) -> list[int]:
    first = first_command(block)
    for prefix, statuses in sorted(EXPECTED.items(), key=lambda item: -len(item[0])):
        if first.startswith(prefix):
            return statuses
    raise AssertionError(f"a README curl example the test doesn't know: {first!r}")


class Readme:
    def __init__(self, live: LiveServer, values: dict[str, str], key: str) -> None:
        self.live, self.values, self.key = live, values, key

    def run(self, block: str, workdir: Path) -> list[int]:
        """Runs the block in bash; the statuses of its curl calls, in order."""
        script = block.replace(LOCAL, self.live.url)
        script = re.sub(r"^KEY=.*$", "", script, flags=re.M)  # the key comes from the env
        for placeholder, value in self.values.items():
            script = script.replace(placeholder, value)
        headers = workdir / "headers"
        shutil.rmtree(headers, ignore_errors=True)
        headers.mkdir()
        result = subprocess.run(
            ["bash", "-c", WRAPPER + script],
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "KEY": self.key, "HEADERS": str(headers)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        statuses = []
        for dump in sorted(headers.iterdir(), key=lambda p: int(p.name)):
            lines = [x for x in dump.read_text().splitlines() if x.startswith("HTTP/")]
            statuses.append(int(lines[-1].split()[1]))
        return statuses


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Readme]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    live = start_live_server(auth_settings(tmp_path_factory.mktemp("readme"), run_jobs=False))
    world = World(live)
    admin = world.user(ADMIN, admin=True)
    site_id = world.site("example.com", admin)
    key = world.key(admin, site_id, ALL_SCOPES)
    # Placeholders whose values exist only once something was done: a key to delete, a
    # privacy request to look up, a sign-in waiting for its second factor.
    spare = live.services.auth.from_bearer(world.key(admin, site_id))
    assert spare is not None and spare.key is not None
    with world.bearer(key) as http:
        erased = http.delete(f"/api/v1/sites/{site_id}/privacy/user/someone")
        assert erased.status_code == 202, erased.text
    user = world.user(TWO_FACTOR)
    secret = new_secret()
    set_totp(live.services.auth, user.id, secret)
    pending = httpx.post(
        f"{live.url}/api/v1/auth/token", json={"email": TWO_FACTOR, "password": PASSWORD}
    ).json()["pending_token"]
    values = {
        "SITE_ID": site_id,
        "KEY_ID": spare.key.id,
        "pr_...": erased.json()["request_id"],
        "PENDING_TOKEN": pending,
        '"code": "123456"': f'"code": "{pyotp.TOTP(secret).now()}"',
        "PASSWORD": PASSWORD,
    }
    try:
        yield Readme(live, values, key)
    finally:
        stop_live_server(live)


def test_readme_has_the_curl_examples_this_test_knows() -> None:
    firsts = [first_command(b) for b in curl_blocks()]
    assert len(firsts) == len(EXPECTED)
    for block in curl_blocks():
        expected_for(block)


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_readme_curl_example_answers_as_documented(
    readme: Readme, tmp_path: Path, index: int
) -> None:
    block = curl_blocks()[index]
    assert readme.run(block, tmp_path) == expected_for(block), block


def test_readme_tracking_examples_store_their_events(readme: Readme, tmp_path: Path) -> None:
    [block] = [b for b in curl_blocks() if "/collect" in b]
    site_id = readme.values["SITE_ID"]
    readme.run(block, tmp_path)
    deadline = time.monotonic() + 5
    while True:
        rows = readme.live.rows(
            "SELECT name, pathname, source, utm_source FROM events WHERE site_id = ?"
            " AND name IN ('pageview', 'Signup') ORDER BY ts DESC LIMIT 2",
            [site_id],
        )
        if len(rows) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(rows, key=lambda r: r["name"]) == [
        {"name": "Signup", "pathname": "/join", "source": None, "utm_source": None},
        {"name": "pageview", "pathname": "/pricing", "source": "Hacker News", "utm_source": "hn"},
    ]
    assert readme.live.services.ingest.drop_log.of(site_id) == []  # nothing dropped as a bot
