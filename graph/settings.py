"""Typed, frozen settings read once from the environment.

Nothing else in Footfall reads ``os.environ``: ``Settings.from_env()`` is called by the
CLI (or a test) and the object is passed down. Invalid values raise ``SettingsError``
naming the variable, so start-up fails with a clear message.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Literal


class SettingsError(ValueError):
    """A configuration variable has an invalid value; the message names the variable."""


class Secret:
    """A string that never prints itself (``repr``/``str`` show ``'**********'``)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


Environment = Literal["development", "production", "test"]
TimescaleMode = Literal["auto", "on", "off"]
IngestQueue = Literal["direct", "redis"]

#: Words of the placeholders shipped in examples (.env.example, "your-secret-key"): a
#: secret containing one is the example's, publicly known; "secret" alone is one too.
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "your-secret", "replace-me")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(name: str, raw: str) -> float:
    """Parse ``"5s"``, ``"250ms"``, ``"24h"``, ``"30d"`` or a bare number of seconds."""
    m = _DURATION.match(raw)
    if not m:
        raise SettingsError(f"{name}: expected a duration like 5s, 250ms, 24h or 30d; got {raw!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def parse_clock(name: str, raw: str) -> time:
    """Parse a UTC wall-clock time ``"HH:MM"`` (00:00–23:59)."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", raw)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise SettingsError(f"{name}: expected a UTC time HH:MM (00:00-23:59); got {raw!r}")
    return time(int(m.group(1)), int(m.group(2)))


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer; got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}; got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise SettingsError(f"{name}: expected one of {', '.join(allowed)}; got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.startswith(tuple(s + "://" for s in schemes)):
        raise SettingsError(f"{name}: expected a URL starting with {' or '.join(schemes)}://")
    return raw


def _placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return lowered == "secret" or any(word in lowered for word in _PLACEHOLDER_WORDS)


def _directory(env: Mapping[str, str], name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not Path(raw).is_dir():
        raise SettingsError(f"{name}: no such directory {raw!r}")
    return Path(raw)


def _networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {part!r} is not an IP address or CIDR range") from None
    return tuple(nets)


def _host(env: Mapping[str, str], production: bool) -> str:
    """``HOST``: an IP address, or a name that resolves (checked here so that a typo stops
    start-up naming the variable, not with the resolver's bare error)."""
    raw = (env.get("HOST") or "").strip()
    if not raw:
        # production runs in a container behind its port mapping: all interfaces there
        return "0.0.0.0" if production else "127.0.0.1"  # nosec B104
    try:
        ipaddress.ip_address(raw.strip("[]"))
        return raw
    except ValueError:
        pass
    try:
        socket.getaddrinfo(raw, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise SettingsError(
            f"HOST: {raw!r} is neither an IP address nor a name that resolves ({exc})"
        ) from None
    return raw


@dataclass(frozen=True)
class Settings:
    """Every setting Footfall reads. Durations are in seconds; sizes in rows or bytes.

    Rate limits: ``rate_limit_*_per_minute`` count tracked events per client IP and per
    website over a sliding minute (0 = unlimited); ``graphql_max_cost`` bounds one
    GraphQL operation and ``graphql_cost_per_minute`` each caller's total (0 = unlimited).

    Ingest: ``ingest_queue`` ``direct`` (group commit in the API process) or ``redis``
    (the API appends to ``ingest_streams`` Redis Streams, at most ``ingest_max_pending``
    entries each; ``footfall writer`` processes commit them and claim a dead writer's
    entries after ``ingest_claim_idle`` seconds). Maintenance (retention) runs at
    ``aggregation_time`` (UTC) and then every ``aggregation_interval`` seconds.
    """

    environment: Environment = "development"
    port: int = 3002
    host: str = "127.0.0.1"
    database_url: str | None = None
    database_read_url: str | None = None
    log_level: str = "info"
    jwt_secret: Secret = field(default_factory=lambda: Secret(""))
    batch_size: int = 2000
    batch_timeout: float = 0.005
    worker_count: int = 1
    retention_days: int = 730
    #: Exact session rollup for the stats scan's events side (``STATS_SESSION_ROLLUP``,
    #: on/off); off = every event in range is read (the raw path, for comparison).
    stats_session_rollup: bool = True
    #: Funnel attempt rollup (``FUNNEL_ROLLUP``, on/off): settled attempts are stored and
    #: reports read them (plain PostgreSQL only); off = reports read events only.
    funnel_rollup: bool = True
    #: Day rollup of the stats (``STATS_DAY_ROLLUP``, on/off): whole local days are stored
    #: with their visitor sets and unfiltered stats read them (plain PostgreSQL only).
    stats_day_rollup: bool = True
    max_db_connections: int = 20
    redis_url: str | None = None
    global_api_key: Secret = field(default_factory=lambda: Secret(""))
    data_dir: Path = Path("footfall-data")
    timescale: TimescaleMode = "auto"
    geoip_db: Path | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    statement_timeout: float = 15.0
    run_migrations: bool = True
    background_jobs: bool = True
    rate_limit_ip_per_minute: int = 12_000
    rate_limit_website_per_minute: int = 600_000
    graphql_max_cost: int = 50_000
    graphql_cost_per_minute: int = 5_000_000
    ingest_queue: IngestQueue = "direct"
    ingest_streams: int = 4
    ingest_max_pending: int = 1_000_000
    ingest_claim_idle: float = 30.0
    aggregation_interval: float = 86_400.0
    aggregation_time: time = time(0, 0)
    #: ``PROMETHEUS_MULTIPROC_DIR``: set by ``footfall serve`` for its workers when
    #: ``WORKER_COUNT`` > 1 (``graph/metrics.py``); ``/metrics`` then merges every worker's
    #: series. Unset: one process, the default registry.
    prometheus_multiproc_dir: Path | None = None

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def workers_without_redis(self) -> bool:
        """Several worker processes and no Redis to share state through: caches, rate
        limits, session claims and realtime notices are per worker; the in-process stats
        and response caches are then off (no worker hears another's commits)."""
        return self.worker_count > 1 and not self.redis_url

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests build their own settings this way)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise ``SettingsError`` naming the bad one."""
        e = os.environ if env is None else env
        environment = _choice(
            e, "ENVIRONMENT", "development", ("development", "production", "test")
        )
        jwt_secret = (e.get("JWT_SECRET") or "").strip()
        if environment == "production":
            if not jwt_secret or _placeholder(jwt_secret):
                raise SettingsError("JWT_SECRET: required (and not a placeholder) in production")
            if len(jwt_secret) < 16:
                raise SettingsError("JWT_SECRET: must be at least 16 characters in production")
            api_key = (e.get("GLOBAL_API_KEY") or "").strip()
            if api_key and (_placeholder(api_key) or len(api_key) < 16):
                raise SettingsError(
                    "GLOBAL_API_KEY: a placeholder or shorter than 16 characters in production"
                    " (unset it, or set a random key)"
                )
        log_level = _choice(
            e, "LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
        )
        geoip = (e.get("GEOIP_DB") or "").strip()
        if geoip and not Path(geoip).is_file():
            raise SettingsError(f"GEOIP_DB: no such file {geoip!r}")
        batch_timeout = parse_duration("BATCH_TIMEOUT", e.get("BATCH_TIMEOUT") or "5ms")
        if not 0 <= batch_timeout <= 10:
            raise SettingsError("BATCH_TIMEOUT: must be between 0 and 10 seconds")
        statement_timeout = parse_duration("STATEMENT_TIMEOUT", e.get("STATEMENT_TIMEOUT") or "15s")
        database_url = _url(e, "DATABASE_URL", ("postgres", "postgresql"))
        redis_url = _url(e, "REDIS_URL", ("redis", "rediss", "unix"))
        ingest_queue = _choice(e, "INGEST_QUEUE", "direct", ("direct", "redis"))
        if ingest_queue == "redis" and not (redis_url and database_url):
            raise SettingsError(
                "INGEST_QUEUE: redis needs REDIS_URL and DATABASE_URL (footfall writer "
                "processes must reach the same Redis and database)"
            )
        claim_idle = parse_duration("INGEST_CLAIM_IDLE", e.get("INGEST_CLAIM_IDLE") or "30s")
        if not 0.1 <= claim_idle <= 86_400:
            raise SettingsError("INGEST_CLAIM_IDLE: must be between 100ms and 24h")
        interval = parse_duration("AGGREGATION_INTERVAL", e.get("AGGREGATION_INTERVAL") or "24h")
        if not 60 <= interval <= 30 * 86_400:
            raise SettingsError("AGGREGATION_INTERVAL: must be between 1m and 30d")
        return cls(
            environment=environment,  # type: ignore[arg-type]
            port=_int(e, "PORT", 3002, 1, 65535),
            host=_host(e, environment == "production"),
            database_url=database_url,
            database_read_url=_url(e, "DATABASE_READ_URL", ("postgres", "postgresql")),
            log_level=log_level,
            jwt_secret=Secret(jwt_secret),
            batch_size=_int(e, "BATCH_SIZE", 2000, 1, 100_000),
            batch_timeout=batch_timeout,
            worker_count=_int(e, "WORKER_COUNT", 1, 1, 64),
            retention_days=_int(e, "RETENTION_DAYS", 730, 1, 36_500),
            stats_session_rollup=_choice(e, "STATS_SESSION_ROLLUP", "on", ("on", "off")) == "on",
            funnel_rollup=_choice(e, "FUNNEL_ROLLUP", "on", ("on", "off")) == "on",
            stats_day_rollup=_choice(e, "STATS_DAY_ROLLUP", "on", ("on", "off")) == "on",
            max_db_connections=_int(e, "MAX_DB_CONNECTIONS", 20, 2, 1000),
            redis_url=redis_url,
            global_api_key=Secret((e.get("GLOBAL_API_KEY") or "").strip()),
            data_dir=Path(e.get("FOOTFALL_DATA_DIR") or "footfall-data"),
            timescale=_choice(e, "TIMESCALE", "auto", ("auto", "on", "off")),  # type: ignore[arg-type]
            geoip_db=Path(geoip) if geoip else None,
            trusted_proxies=_networks("TRUSTED_PROXIES", e.get("TRUSTED_PROXIES") or ""),
            statement_timeout=statement_timeout,
            rate_limit_ip_per_minute=_int(e, "RATE_LIMIT_IP_PER_MINUTE", 12_000, 0, 10**9),
            rate_limit_website_per_minute=_int(
                e, "RATE_LIMIT_WEBSITE_PER_MINUTE", 600_000, 0, 10**9
            ),
            graphql_max_cost=_int(e, "GRAPHQL_MAX_COST", 50_000, 1, 10**9),
            graphql_cost_per_minute=_int(e, "GRAPHQL_COST_PER_MINUTE", 5_000_000, 0, 10**12),
            ingest_queue=ingest_queue,  # type: ignore[arg-type]
            ingest_streams=_int(e, "INGEST_STREAMS", 4, 1, 256),
            ingest_max_pending=_int(e, "INGEST_MAX_PENDING", 1_000_000, 1, 10**9),
            ingest_claim_idle=claim_idle,
            aggregation_interval=interval,
            aggregation_time=parse_clock("AGGREGATION_TIME", e.get("AGGREGATION_TIME") or "00:00"),
            prometheus_multiproc_dir=_directory(e, "PROMETHEUS_MULTIPROC_DIR"),
        )
