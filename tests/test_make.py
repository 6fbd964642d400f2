"""`make run` and `make test` share one .venv: neither uninstalls what the other installed."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from tests.conftest import ROOT


def _sync_command(target: str) -> list[str]:
    """The `uv sync ...` line `make TARGET` runs (make -n prints it without running it)."""
    printed = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    syncs = [line for line in printed.splitlines() if " sync " in f" {line} "]
    assert len(syncs) == 1, printed
    return shlex.split(syncs[0])


@pytest.mark.parametrize("target", ["install", "dev"])
def test_make_target_removes_nothing_when_the_venv_has_both_sets(target: str) -> None:
    # The suite runs in the .venv `make test` built (runtime + dev extras): the sync of
    # `make run` (install) and of `make test` (dev), dry-run on it, must change nothing.
    command = _sync_command(target)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv")}
    answer = subprocess.run(
        [*command, "--dry-run"], cwd=ROOT, capture_output=True, text=True, env=env, check=True
    )
    out = answer.stdout + answer.stderr
    # Avocet itself is rebuilt whenever its source changed; no other package may go.
    removed = [line for line in out.splitlines() if line.startswith(" - ")]
    assert [line for line in removed if not line.startswith(" - avocet")] == [], out


def test_make_install_keeps_dev_tools_when_run_after_test() -> None:
    assert "--inexact" in _sync_command("install")
    assert "--no-dev" in _sync_command("install")
