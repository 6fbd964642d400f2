"""The Docker set-up, without a Docker daemon: the Dockerfile read statically (uv pinned,
dependencies in a layer before the code, a health check that follows the configured port),
that health check run for real against a live server, the README's compose example, and
the message a bind-mounted folder owned by another user gets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.storage.files import FolderNotWritable, check_writable
from tests.conftest import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_dockerfile_pins_uv_when_installing_it() -> None:
    steps = instructions()
    [version] = [rest for word, rest in steps if word == "ARG" and rest.startswith("UV_VERSION=")]
    assert re.fullmatch(r"UV_VERSION=\d+\.\d+\.\d+", version)
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    assert len(installs) == 1 and '"uv==${UV_VERSION}"' in installs[0]


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    steps = instructions()
    copies = [(i, rest) for i, (word, rest) in enumerate(steps) if word == "COPY"]
    syncs = [i for i, (word, rest) in enumerate(steps) if word == "RUN" and "uv sync" in rest]
    # The first copy brings only what the resolver needs; the first sync installs only the
    # locked dependencies (--no-install-project), so that layer survives a code change.
    assert copies[0][1] == "pyproject.toml uv.lock ./"
    assert "--frozen" in steps[syncs[0]][1] and "--no-install-project" in steps[syncs[0]][1]
    assert syncs[0] < copies[1][0]
    assert [rest for _, rest in copies[1:]] == ["README.md ./", "app ./app", "static ./static"]
    assert copies[-1][0] < syncs[1]


def test_dockerfile_runs_as_uid_1000_with_a_health_check_on_the_configured_port() -> None:
    assert any("useradd --system --uid 1000" in rest for word, rest in instructions())
    steps = dict(instructions())  # one USER and one HEALTHCHECK
    assert steps["USER"] == "avocet"
    check = steps["HEALTHCHECK"]
    command = json.loads(check.split("CMD", 1)[1])
    assert command == ["/app/.venv/bin/python", "-m", "app.healthcheck"]
    assert "8000" not in check


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK's command, as the container runs it (its settings from AVOCET_*)."""
    env = {**os.environ, "AVOCET_HOST": "0.0.0.0", "AVOCET_PORT": str(port)}
    env.pop("AVOCET_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "app.healthcheck"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_passes_when_the_server_answers_on_the_configured_port(
    live_server: LiveServer,
) -> None:
    result = _healthcheck(live_server.settings.port)
    assert (result.returncode, result.stderr) == (0, "")


def test_healthcheck_fails_with_the_reason_when_nothing_listens() -> None:
    port = free_port()
    result = _healthcheck(port)
    assert result.returncode == 1
    assert result.stderr.startswith(f"healthcheck: http://127.0.0.1:{port}/api/health: ")
    assert "Connection refused" in result.stderr


def test_readme_compose_example_trusts_dockers_networks_behind_caddy() -> None:
    readme = (ROOT / "README.md").read_text()
    docker = readme.split("### Docker", 1)[1].split("\n## ", 1)[0]
    [compose] = re.findall(r"```yaml\n(.*?)```", docker, re.S)
    # At the top of the section: the first thing a Docker user reads.
    assert docker.index("```yaml") < docker.index("```sh")
    doc = yaml.safe_load(compose)
    avocet, caddy = doc["services"]["avocet"], doc["services"]["caddy"]
    assert avocet["environment"]["AVOCET_TRUSTED_PROXIES"] == "172.16.0.0/12"
    assert avocet["volumes"] == ["avocet-data:/data", "avocet-backups:/backups"]
    assert "ports" not in avocet  # reached through Caddy only
    assert caddy["image"] == "caddy:2"
    caddyfile = doc["configs"]["caddyfile"]["content"]
    assert "reverse_proxy avocet:8000" in caddyfile


@pytest.mark.parametrize(
    ("owner", "mode", "writable"),
    [
        (0, 0o755, False),  # a host folder created by root, bind-mounted into the container
        (1000, 0o700, True),
        (0, 0o777, True),
        (1000, 0o500, False),
    ],
)
def test_folder_owned_by_another_user_is_refused_with_the_fix(
    tmp_path: Path, owner: int, mode: int, writable: bool
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    os.chown(folder, owner, owner)
    folder.chmod(mode)
    if writable:
        check_writable(folder, 1000, {1000})
        return
    with pytest.raises(FolderNotWritable) as caught:
        check_writable(folder, 1000, {1000})
    assert caught.value.message == (
        f"cannot write into {folder}, owned by uid {owner}: Avocet runs as uid 1000. Give the"
        " folder to that user (for a Docker bind mount, on the host: sudo chown -R 1000:1000"
        " ./data), or run the container as the folder's owner (docker run --user"
        " $(id -u):$(id -g) ...), or use a named volume (-v avocet-data:/data)."
    )
