"""Settings: the example file documents every key, env vars override, errors are clear."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.config import ConfigError, Settings, load_settings
from tests.conftest import ROOT


def keys_of(struct: type[msgspec.Struct], prefix: str = "") -> set[str]:
    found = set()
    for field in msgspec.structs.fields(struct):
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            found |= keys_of(kind, f"{prefix}{field.name}.")
        else:
            found.add(f"{prefix}{field.name}")
    return found


def flatten(table: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in table.items():
        if isinstance(value, dict):
            found |= flatten(value, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def test_example_config_lists_every_setting_with_its_default() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert flatten(example) == keys_of(Settings)
    assert msgspec.convert(example, Settings) == Settings()


def test_env_overrides_file_when_both_set(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('port = 9000\ndata_dir = "/srv/a"\n[duckdb]\nthreads = 1\n')
    env = {
        "AVOCET_PORT": "9100",
        "AVOCET_HOST": "0.0.0.0",
        "AVOCET_DUCKDB__THREADS": "2",
        "AVOCET_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.1/32",
        "AVOCET_OPEN_STATS_ON_LOOPBACK": "true",
        "UNRELATED": "x",
    }
    settings = load_settings(path, env)
    assert (settings.port, settings.host, settings.data_dir) == (9100, "0.0.0.0", "/srv/a")
    assert settings.duckdb.threads == 2
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.0.1/32")
    assert settings.open_stats_on_loopback is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AVOCET_PORT": "eighty"}, "Expected `int`"),
        ({"AVOCET_PORT": "70000"}, "<= 65535"),
        ({"AVOCET_NOPE": "1"}, "unknown field `nope`"),
    ],
)
def test_invalid_settings_raise_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env)
