"""public_url (AVOCET_PUBLIC_URL): every URL shown outside the request's own address uses
it (the CLI's snippet, the install page, invitation links), and `avocet serve` warns when
it listens on a public address without it. AVOCET_* variables of the CLI never break the
configuration."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.accounts_fixtures import World, auth_settings
from tests.conftest import ROOT, free_port, start_live_server, stop_live_server
from tests.test_ui_forms import OWNER, sign_in_ui

PUBLIC = "https://analytics.example.com"


def cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
    )


def test_cli_snippet_uses_public_url_when_set(tmp_path: Path) -> None:
    added = cli(tmp_path / "data", "site", "add", "example.com", "--json",
                AVOCET_PUBLIC_URL=PUBLIC + "/")  # fmt: skip
    assert added.returncode == 0, added.stderr
    site = json.loads(added.stdout)
    assert site["snippet"] == (
        f'<script defer data-site="{site["id"]}" src="{PUBLIC}/script.js"></script>'
    )


def test_cli_works_when_its_own_avocet_variables_are_set(tmp_path: Path) -> None:
    # The README's form: AVOCET_TOKEN=... avocet backup ... --url ...
    listed = cli(tmp_path / "data", "site", "list",
                 AVOCET_TOKEN="av_live_x", AVOCET_URL="http://127.0.0.1:1")  # fmt: skip
    assert (listed.returncode, listed.stderr) == (0, "")
    typo = cli(tmp_path / "data", "site", "list", AVOCET_DATA_DRI="/tmp/x")
    assert (typo.returncode, typo.stderr) == (
        2,
        "avocet: AVOCET_DATA_DRI is not a setting (did you mean AVOCET_DATA_DIR?)\n",
    )


def test_pages_show_public_url_when_opened_over_another_address(tmp_path: Path) -> None:
    live = start_live_server(auth_settings(tmp_path, public_url=PUBLIC))
    try:
        world = World(live)
        owner = world.user(OWNER)
        site_id = world.site("shop.test", owner)
        http, csrf = sign_in_ui(world, OWNER)  # over http://127.0.0.1:PORT
        install = http.get(f"/ui/sites/{site_id}/install").text
        assert f'data-src="{PUBLIC}/script.js"' in install
        assert live.url not in install
        invited = http.post(
            f"/ui/sites/{site_id}/members",
            data={"csrf_token": csrf, "email": "new@example.com", "role": "viewer"},
            follow_redirects=True,
        ).text
        assert re.search(rf'value="{re.escape(PUBLIC)}/ui/invite/[A-Za-z0-9_-]+"', invited)
        for client in world.clients:
            client.close()
    finally:
        stop_live_server(live)


def _serve_log(tmp_path: Path, **env: str) -> tuple[str, int]:
    """What `avocet serve` logs up to its first answer (then it is stopped), and its port."""
    port = free_port()
    variables = {**os.environ, "AVOCET_RUN_JOBS": "false", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data"), "serve",
         "--port", str(port)],
        cwd=ROOT, env=variables, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    return err, port


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({"AVOCET_HOST": "0.0.0.0"}, True),
        ({"AVOCET_HOST": "0.0.0.0", "AVOCET_PUBLIC_URL": PUBLIC}, False),
        ({"AVOCET_HOST": "127.0.0.1"}, False),
    ],
)
def test_serve_warns_when_public_without_public_url(
    tmp_path: Path, env: dict[str, str], warned: bool
) -> None:
    log, port = _serve_log(tmp_path, **env)
    warning = (
        "WARNING avocet: listening on 0.0.0.0 without public_url: `avocet site add` prints"
        f" snippets for http://127.0.0.1:{port} and the UI's snippets and links use whatever"
        " address a page was opened at. Set public_url (AVOCET_PUBLIC_URL) to the address"
        " visitors reach, e.g. https://analytics.example.com\n"
    )
    assert (warning in log) is warned, log
