"""The avocet CLI on a real data dir, as a subprocess."""

from __future__ import annotations

import json

from tests.conftest import ServeProcess


def test_site_add_prints_id_and_snippet_as_json(serve_process: ServeProcess) -> None:
    result = serve_process.cli(
        "site",
        "add",
        "https://WWW.Example.com/blog",
        "--timezone",
        "Europe/Berlin",
        "--name",
        "My blog",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    site = json.loads(result.stdout)
    assert set(site) == {"id", "domain", "name", "timezone", "created_at", "owner", "snippet"}
    assert site["owner"] is None  # no users yet; with users, the first admin owns it
    assert (site["domain"], site["name"], site["timezone"]) == (
        "example.com",
        "My blog",
        "Europe/Berlin",
    )
    assert site["snippet"] == (
        f'<script defer data-site="{site["id"]}" src="http://127.0.0.1:8000/script.js"></script>'
    )
    listed = serve_process.cli("site", "list", "--json")
    assert json.loads(listed.stdout) == [
        {k: v for k, v in site.items() if k not in ("snippet", "owner")}
    ]


def test_site_add_refuses_bad_input_with_a_message(serve_process: ServeProcess) -> None:
    serve_process.cli("site", "add", "example.com")
    cases = [
        (("site", "add", "example.com"), "already exists"),
        (("site", "add", "not a domain"), "not a valid domain"),
        (("site", "add", "example.org", "--timezone", "Mars/Olympus"), "unknown timezone"),
    ]
    for args, message in cases:
        result = serve_process.cli(*args)
        assert result.returncode == 2
        assert message in result.stderr
        assert result.stdout == ""


def test_sites_added_while_the_server_runs_are_tracked(serve_process: ServeProcess) -> None:
    import httpx

    serve_process.start()
    site = json.loads(serve_process.cli("site", "add", "example.com", "--json").stdout)["id"]
    body = {"n": "pageview", "u": "https://example.com/", "s": site}
    assert (
        httpx.post(
            f"{serve_process.url}/collect",
            json=body,
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"},
        ).status_code
        == 204
    )
    assert httpx.get(f"{serve_process.url}/e/live/{site}").json() == {"visitors": 1}


def test_help_lists_the_commands(serve_process: ServeProcess) -> None:
    result = serve_process.cli("--help")
    assert result.returncode == 0
    for command in ("serve", "site"):
        assert command in result.stdout
