"""Settings: one typed struct, read from TOML, then overridden by AVOCET_* variables."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "AVOCET_"
# AVOCET_* variables of the command line, not settings: never read as configuration.
CLI_VARIABLES = frozenset({"CONFIG", "TOKEN", "URL"})


class DuckDBSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # 0 = let DuckDB use every core; the machine is small, queries should use all of it.
    threads: Annotated[int, msgspec.Meta(ge=0)] = 0
    memory_limit: str = "1GB"
    # The server checkpoints (folds the WAL into the file) once the WAL is this big, from a
    # job, while ingest goes to the journal; DuckDB's own checkpoint, which holds up every
    # commit behind it, only happens at 4x this.
    checkpoint_wal_mb: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 16


class IngestSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A commit starts as soon as the previous one ends; this only caps one batch's size.
    max_batch_rows: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    # Request bodies over this many bytes are dropped unread (collect answers 204 anyway).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    # Parsed user agents kept in memory (the parse costs ~16 µs, a hit costs ~0.1 µs).
    ua_cache_size: Annotated[int, msgspec.Meta(ge=16)] = 20_000
    # Server-side events may be stamped at most this far in the future (clock skew).
    max_future_seconds: Annotated[int, msgspec.Meta(ge=0)] = 300


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # HS256 secret for /api/v1/auth/token JWTs; empty = generated into data_dir/jwt.secret.
    jwt_secret: str = ""
    jwt_ttl_seconds: Annotated[int, msgspec.Meta(ge=60)] = 3600
    session_ttl_hours: Annotated[int, msgspec.Meta(ge=1)] = 24 * 14
    # "auto" marks the cookie Secure when the request came over https (or a trusted proxy
    # says so); "always" / "never" force it.
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # argon2id cost; the defaults are RFC 9106's low-memory profile (~100 ms a hash).
    password_time_cost: Annotated[int, msgspec.Meta(ge=1)] = 3
    password_memory_kib: Annotated[int, msgspec.Meta(ge=8)] = 65536
    # Sign-in attempts (right or wrong) allowed per account per 15 minutes and per IP per
    # minute; a burst of guesses past either gets 429.
    login_attempts_per_account: Annotated[int, msgspec.Meta(ge=1)] = 10
    login_attempts_per_ip: Annotated[int, msgspec.Meta(ge=1)] = 30


class LimitSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Authenticated API requests per minute per API key (or per signed-in user / JWT).
    key_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 1000
    # Authenticated API requests per minute per client IP, counted before the token is checked.
    ip_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 2000
    # Server-side events per minute per site.
    site_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 6000
    # Public tracking hits (/collect, /api/event, /e/*) per minute per site and per client IP;
    # hits over either limit are dropped (and counted), never stored.
    collect_site_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 60_000
    collect_ip_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 1_200
    # Requests per calendar month (UTC) per API key; 0 = unlimited.
    monthly_requests: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000
    # Usage counters and last_used_at are written to SQLite this often.
    usage_flush_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Request line + headers of one request, in bytes; more is answered 431 and the
    # connection closed (uvicorn with httptools accepts any size; real requests are < 4 KiB).
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 16 * 1024
    # A request's headers must be complete this many seconds after its connection opens
    # (or after its first byte on a kept-alive connection): slow-drip headers get 408, a
    # connection that sends nothing is closed.
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # A request's body must be complete this many seconds after its headers, else 408.
    body_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # An idle kept-alive connection is closed after this many seconds.
    keep_alive_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    # Open connections at once; one more is answered 503 and closed at once (each costs a
    # file descriptor until a timeout above closes it).
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1000


class RetentionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Days of everything (raw events, daily rollups, bot and exclusion counters) a site keeps
    # unless its owner sets its own; 0 = forever. (The raw default is raw_retention_days.)
    total_days: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    # Limits on what an owner may set, in days; 0 = no limit. max_total_days also caps the
    # sites that keep "forever" (and total_days above), e.g. to bound the disk a user can fill.
    max_raw_days: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_total_days: Annotated[int, msgspec.Meta(ge=0)] = 0


class MailSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Outgoing mail (invitations). Empty smtp_host = no mail: the inviter passes the link on.
    smtp_host: str = ""
    smtp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    # "starttls" upgrades a plain connection (port 587), "tls" connects over TLS (port 465),
    # "none" sends in clear (a relay on this machine only).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    # The sender address of every mail, e.g. "Avocet <analytics@example.com>".
    from_address: str = ""
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class ClickHouseSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Where events go when storage = "clickhouse" (preview, issue #24): chdb://PATH for
    # ClickHouse's embedded engine on a folder, http(s)://user:password@host:8123/db for a
    # server or cluster. Empty: chdb://<data_dir>/clickhouse.
    dsn: str = ""
    # At least this long between two inserts of one writer (a server's, a sessionizer's):
    # every insert makes a part that merges fold in, and ClickHouse wants a few per second,
    # not one per hit. A hit is acknowledged after its insert, so this adds up to as much
    # to the tracking request's latency (a browser never waits on it). 0: back to back.
    insert_interval_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 200

    def __post_init__(self) -> None:
        if self.dsn and not self.dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError(
                f"clickhouse.dsn: expected chdb://PATH or http(s)://..., got {self.dsn!r}"
            )


class ClusterSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Many collectors (issue #24, README "Past one machine"): `avocet collector` processes
    # take the public tracking endpoints and forward each hit to its session owner, one of
    # the `avocet sessionizer` processes; `avocet serve` is the control plane (API, UI,
    # jobs, sites and salts). Every node of a cluster has the same [cluster] settings.
    # The shared secret of the internal API (at least 32 characters); empty: no internal
    # API, `avocet serve` answers no node.
    secret: str = ""
    # Where collectors and sessionizers reach `avocet serve`, e.g. http://10.0.0.2:8000.
    control_url: str = ""
    # The sessionizers' URLs, in the same order on every collector (a visitor's owner is
    # chosen by position: add new ones at the end).
    sessionizers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.secret and len(self.secret) < 32:
            raise ValueError("cluster.secret: at least 32 characters (openssl rand -hex 32)")
        for url in (self.control_url, *self.sessionizers):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"cluster: expected an http(s):// URL, got {url!r}")


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # The address people and their browsers reach this server at, e.g.
    # "https://analytics.example.com" behind a reverse proxy: every URL printed or shown
    # outside a request (the snippet of `avocet site add`, the install page, invitation
    # links) uses it. Empty = the URL of the request (in the UI) or http://host:port.
    public_url: str = ""
    data_dir: str = "data"  # msgspec has no Path type; wrap in Path at use
    # The only folder POST /api/v1/admin/backup writes into (each backup a new folder in
    # it); empty = "backups" beside the data dir. Never inside the data dir or the app's
    # code and static files: a backup holds every secret of the instance.
    backup_dir: str = ""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Client IPs are taken from X-Forwarded-For only when the peer is one of these.
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # A MaxMind-format (.mmdb, MaxMind or DB-IP) city database for region/city; empty = off,
    # and the country comes from the offline database shipped with the install.
    geoip_db: str = ""
    # Days of raw events a site keeps unless its owner sets its own; older days are answered
    # from daily rollups. Limits and the total retention: [retention].
    raw_retention_days: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 90
    # Background jobs: daily rollups (hourly) and raw retention (every 6 h). Off only for
    # tests or when another process runs `avocet rollup` / `avocet prune` on a schedule.
    run_jobs: bool = True
    # Until real auth exists: allow unauthenticated stats reads from loopback only.
    open_stats_on_loopback: bool = False
    # Where Plausible's APIs answer in Plausible's shapes (app/api/plausible_root.py): the
    # Stats API v1, the Sites API, /api/v2/query, /api/event and script.js variants under
    # it. Empty: not mounted.
    plausible_base_path: str = "/plausible"
    # Where events and rollups live: "duckdb" (events.duckdb in data_dir) or "clickhouse"
    # ([clickhouse] dsn; a preview that needs the clickhouse extra, see the README).
    storage: Literal["duckdb", "clickhouse"] = "duckdb"
    duckdb: DuckDBSettings = DuckDBSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    cluster: ClusterSettings = ClusterSettings()
    ingest: IngestSettings = IngestSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    mail: MailSettings = MailSettings()
    retention: RetentionSettings = RetentionSettings()
    server: ServerSettings = ServerSettings()

    def __post_init__(self) -> None:
        if self.public_url:
            check_public_url(self.public_url)
        base = self.plausible_base_path
        if base and (not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", base) or base.rstrip("/") == ""):
            raise ValueError(
                f"plausible_base_path: expected a path such as /plausible (or empty), got {base!r}"
            )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def clickhouse_dsn(self) -> str:
        """[clickhouse] dsn, or the embedded engine's folder in the data dir."""
        return self.clickhouse.dsn or f"chdb://{Path(self.data_dir) / 'clickhouse'}"

    @property
    def backup_root(self) -> Path:
        """Where server-side backups go (absolute: the server's working dir decides)."""
        if self.backup_dir:
            return Path(self.backup_dir).resolve()
        return Path(self.data_dir).resolve().parent / "backups"

    @property
    def local_url(self) -> str:
        """Where a client on this machine reaches the server (a wildcard host as loopback)."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where people reach the server: public_url, else the local URL."""
        return self.public_url.rstrip("/") or self.local_url

    @property
    def listens_on_loopback(self) -> bool:
        """True when only this machine can connect (127.x, ::1, localhost)."""
        host = self.host.strip("[]").lower()
        return host == "localhost" or host == "::1" or host.startswith("127.")


def check_public_url(url: str) -> None:
    """public_url is an http(s) URL of a host, with an optional path, nothing else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public_url: expected http(s)://host[:port][/path], got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"public_url: no query, fragment or user in it, got {url!r}")


class ConfigError(Exception):
    """The configuration file or an AVOCET_* variable is invalid."""


def setting_keys(struct: type[msgspec.Struct] = Settings, prefix: str = "") -> list[str]:
    """Every setting's dotted key ("port", "duckdb.threads"), tables left out."""
    keys: list[str] = []
    for field in msgspec.structs.fields(struct):
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            keys += setting_keys(kind, f"{prefix}{field.name}.")
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def _closest(key: str, keys: list[str]) -> str | None:
    """The setting `key` is probably a typo of: within its table when it names one (the
    table's name would make any two keys of it look alike), else among all keys."""
    table, _, leaf = key.rpartition(".")
    leaves = [k.rsplit(".", 1)[1] for k in keys if table and k.startswith(f"{table}.")]
    if leaves:
        found = difflib.get_close_matches(leaf, leaves, n=1, cutoff=0.75)
        return f"{table}.{found[0]}" if found else None
    found = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    return found[0] if found else None


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "__").upper()


def _unknown_env(name: str, key: str) -> str | None:
    """Why AVOCET_<key> can't be a setting, or None when it isn't meant as one.

    A name close to a setting (a typo: AVOCET_PROT) or inside a settings table
    (AVOCET_DUCKDB__THREDS) is an error that names it; any other AVOCET_* variable (one
    of the CLI's, or an orchestrator's, e.g. Kubernetes' AVOCET_SERVICE_HOST) is ignored."""
    keys = setting_keys()
    table = key.split(".")[0] if "." in key else ""
    near = _closest(key, keys)
    if near is not None:
        return f"{name} is not a setting (did you mean {_env_name(near)}?)"
    in_table = [k for k in keys if k.startswith(f"{table}.")] if table else []
    if in_table:
        names = ", ".join(_env_name(k) for k in in_table)
        return f"{name} is not a setting; [{table}] has {names}"
    return None


def _check_keys(raw: dict[str, Any], source: Path) -> None:
    """Every key of the file is a setting; a typo is named with its closest setting."""
    keys = setting_keys()
    tables = {k.rsplit(".", 1)[0] for k in keys if "." in k}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, value in node.items():
            key = f"{prefix}{name}"
            if isinstance(value, dict) and key in tables:
                walk(value, f"{key}.")
            elif key not in keys:
                near = _closest(key, keys)
                hint = f" (did you mean {near!r}?)" if near else ""
                raise ConfigError(f"{source}: {key!r} is not a setting{hint}")

    walk(raw, "")


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


_SERVICE_LINK = re.compile(r"^(tcp|udp|sctp)://", re.IGNORECASE)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    keys = set(setting_keys())
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in CLI_VARIABLES:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path == ["port"] and _SERVICE_LINK.match(value):
            # A service named "avocet" makes Kubernetes (and Docker's links) set
            # AVOCET_PORT=tcp://10.0.0.11:8000 in every pod: where that service is, not a
            # setting (a port to listen on is a number).
            continue
        if ".".join(path) not in keys:
            problem = _unknown_env(name, ".".join(path))
            if problem is not None:
                raise ConfigError(problem)
            continue
        if path in (["trusted_proxies"], ["cluster", "sessionizers"]):
            # Always lists, even of one item (comma-separated).
            node = raw.setdefault(path[0], {}) if len(path) == 2 else raw
            node[path[-1]] = [v.strip() for v in value.split(",") if v.strip()]
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
        _check_keys(raw, path)
    _apply_env(raw, env)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
