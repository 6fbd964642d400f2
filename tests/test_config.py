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
        ({"AVOCET_PROT": "8080"}, r"^AVOCET_PROT is not a setting \(did you mean AVOCET_PORT\?\)$"),
        (
            {"AVOCET_DUCKDB__THREDS": "2"},
            r"^AVOCET_DUCKDB__THREDS is not a setting \(did you mean AVOCET_DUCKDB__THREADS\?\)$",
        ),
        (
            {"AVOCET_DUCKDB__CORES": "2"},
            r"^AVOCET_DUCKDB__CORES is not a setting; \[duckdb\] has AVOCET_DUCKDB__THREADS,"
            r" AVOCET_DUCKDB__MEMORY_LIMIT, AVOCET_DUCKDB__CHECKPOINT_WAL_MB$",
        ),
        (
            {"AVOCET_DUKDB__THREADS": "2"},
            r"^AVOCET_DUKDB__THREADS is not a setting \(did you mean AVOCET_DUCKDB__THREADS\?\)$",
        ),
        ({"AVOCET_PUBLIC_URL": "analytics.example.com"}, "expected http\\(s\\)://host"),
        ({"AVOCET_PUBLIC_URL": "https://a.example.com/?x=1"}, "no query, fragment or user"),
    ],
)
def test_invalid_settings_raise_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env)


def test_avocet_variables_that_are_not_settings_are_left_alone() -> None:
    # The CLI's own (the README's `AVOCET_TOKEN=... avocet backup --url ...`) and an
    # orchestrator's (Kubernetes names a service's address AVOCET_SERVICE_HOST).
    env = {
        "AVOCET_TOKEN": "av_live_x",
        "AVOCET_URL": "http://127.0.0.1:8000",
        "AVOCET_SERVICE_HOST": "10.0.0.7",
        "AVOCET_PORT_8000_TCP_ADDR": "10.0.0.7",
        "AVOCET_PORT": "9000",
    }
    assert load_settings(None, env) == Settings(port=9000)


def test_a_kubernetes_service_named_avocet_does_not_break_the_port() -> None:
    """Kubernetes gives every pod of a namespace with a service "avocet" these variables
    (Docker's container links too): AVOCET_PORT is the service's address, not a setting."""
    env = {
        "AVOCET_SERVICE_HOST": "10.96.0.11",
        "AVOCET_SERVICE_PORT": "8000",
        "AVOCET_PORT": "tcp://10.96.0.11:8000",
        "AVOCET_PORT_8000_TCP": "tcp://10.96.0.11:8000",
        "AVOCET_PORT_8000_TCP_PROTO": "tcp",
        "AVOCET_PORT_8000_TCP_PORT": "8000",
        "AVOCET_PORT_8000_TCP_ADDR": "10.96.0.11",
    }
    assert load_settings(None, env) == Settings()
    assert load_settings(None, {**env, "AVOCET_PUBLIC_URL": "https://a.example.com"}) == Settings(
        public_url="https://a.example.com"
    )


def test_misspelt_key_in_the_file_is_named_with_the_closest_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('public_ulr = "https://a.example.com"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert (
        str(caught.value) == f"{path}: 'public_ulr' is not a setting (did you mean 'public_url'?)"
    )
    path.write_text("[duckdb]\nthreads = 1\nmemory = '1GB'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(caught.value) == f"{path}: 'duckdb.memory' is not a setting"


@pytest.mark.parametrize(
    ("public_url", "host", "base_url"),
    [
        ("", "127.0.0.1", "http://127.0.0.1:8000"),
        ("", "0.0.0.0", "http://127.0.0.1:8000"),
        ("https://analytics.example.com/", "0.0.0.0", "https://analytics.example.com"),
        ("https://example.com/stats", "127.0.0.1", "https://example.com/stats"),
    ],
)
def test_base_url_is_public_url_when_set(public_url: str, host: str, base_url: str) -> None:
    env = {"AVOCET_PUBLIC_URL": public_url, "AVOCET_HOST": host}
    assert load_settings(None, env).base_url == base_url
