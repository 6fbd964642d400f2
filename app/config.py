"""Settings: one typed struct, read from TOML, then overridden by AVOCET_* variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

ENV_PREFIX = "AVOCET_"


class DuckDBSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # 0 = let DuckDB use every core; the machine is small, queries should use all of it.
    threads: Annotated[int, msgspec.Meta(ge=0)] = 0
    memory_limit: str = "1GB"


class IngestSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A commit starts as soon as the previous one ends; this only caps one batch's size.
    max_batch_rows: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    # Request bodies over this many bytes are dropped unread (collect answers 204 anyway).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    # Parsed user agents kept in memory (the parse costs ~16 µs, a hit costs ~0.1 µs).
    ua_cache_size: Annotated[int, msgspec.Meta(ge=16)] = 20_000


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    data_dir: str = "data"  # msgspec has no Path type; wrap in Path at use
    log_level: str = "info"
    # Client IPs are taken from X-Forwarded-For only when the peer is one of these.
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # A MaxMind-format (.mmdb, MaxMind or DB-IP) city database for region/city; empty = off,
    # and the country comes from the offline database shipped with the install.
    geoip_db: str = ""
    raw_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 90
    # Until real auth exists: allow unauthenticated stats reads from loopback only.
    open_stats_on_loopback: bool = False
    duckdb: DuckDBSettings = DuckDBSettings()
    ingest: IngestSettings = IngestSettings()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


class ConfigError(Exception):
    """The configuration file or an AVOCET_* variable is invalid."""


def _set_path(raw: dict[str, Any], path: list[str], value: str) -> None:
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{ENV_PREFIX}{'__'.join(path).upper()}: {part} is not a table")
        node = child
    node[path[-1]] = _env_value(value)


def _env_value(value: str) -> Any:
    # Lists are comma-separated ("127.0.0.1/32,10.0.0.0/8"); scalars are converted by msgspec.
    return value.split(",") if "," in value else value


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] == "trusted_proxies":
            raw["trusted_proxies"] = [v.strip() for v in value.split(",") if v.strip()]
            continue
        _set_path(raw, path, value)


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """TOML file (if any), then AVOCET_* overrides, validated into Settings."""
    env = os.environ if env is None else env
    if path is None and env.get(f"{ENV_PREFIX}CONFIG"):
        path = Path(env[f"{ENV_PREFIX}CONFIG"])
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    _apply_env(raw, env)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
