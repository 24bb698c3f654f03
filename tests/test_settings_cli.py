"""Settings from the environment, the CLI's token command, and the schema file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from graph.schema import schema
from graph.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_match_the_seed() -> None:
    s = Settings.from_env({})
    assert s.port == 3002 and s.environment == "development" and s.database_url is None
    assert s.timescale == "auto" and s.data_dir == Path("footfall-data")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"BATCH_TIMEOUT": "soon"}, "BATCH_TIMEOUT"),
        ({"WORKER_COUNT": "-1"}, "WORKER_COUNT"),
        ({"RETENTION_DAYS": "x"}, "RETENTION_DAYS"),
        ({"MAX_DB_CONNECTIONS": "1"}, "MAX_DB_CONNECTIONS"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_READ_URL": "nope"}, "DATABASE_READ_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"TIMESCALE": "maybe"}, "TIMESCALE"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
        ({"GEOIP_DB": "/no/such/file.mmdb"}, "GEOIP_DB"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8, banana"}, "TRUSTED_PROXIES"),
        ({"HOST": "not.a.host"}, "HOST"),
        ({"HOST": "bad host name"}, "HOST"),
        ({"ENVIRONMENT": "production"}, "JWT_SECRET"),
        ({"ENVIRONMENT": "production", "JWT_SECRET": "your-secret-key"}, "JWT_SECRET"),
        # the values shipped in .env.example are publicly known
        ({"ENVIRONMENT": "production",
          "JWT_SECRET": "change-me-to-32-or-more-random-characters"}, "JWT_SECRET"),
        ({"ENVIRONMENT": "production", "JWT_SECRET": "s" * 32, "GLOBAL_API_KEY": "change-me"},
         "GLOBAL_API_KEY"),
        ({"ENVIRONMENT": "production", "JWT_SECRET": "s" * 32, "GLOBAL_API_KEY": "short"},
         "GLOBAL_API_KEY"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_values_are_parsed() -> None:
    s = Settings.from_env({
        "PORT": "8080", "BATCH_SIZE": "500", "BATCH_TIMEOUT": "250ms", "WORKER_COUNT": "2",
        "RETENTION_DAYS": "30", "MAX_DB_CONNECTIONS": "40", "TRUSTED_PROXIES": "10.0.0.0/8",
        "GLOBAL_API_KEY": "k" * 16, "JWT_SECRET": "s" * 32, "ENVIRONMENT": "production",
    })  # fmt: skip
    assert (s.port, s.batch_size, s.batch_timeout, s.worker_count) == (8080, 500, 0.25, 2)
    assert s.retention_days == 30 and s.max_db_connections == 40
    assert "s" * 32 not in repr(s)  # secrets never print


@pytest.mark.parametrize(
    "env,said",
    [
        ({"ENVIRONMENT": "production"}, "JWT_SECRET"),
        ({"HOST": "not.a.host"}, "configuration error: HOST: 'not.a.host'"),
    ],
)
def test_serve_stops_naming_the_bad_variable(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "graph.cli", "serve"], env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2
    assert said in out.stderr, out.stderr


def test_host_accepts_addresses_and_names() -> None:
    for host in ("127.0.0.1", "::1", "0.0.0.0", "localhost"):  # nosec B104
        assert Settings.from_env({"HOST": host}).host == host
    assert Settings.from_env({}).host == "127.0.0.1"


def test_token_create_prints_the_token_last() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "graph.cli", "token", "create", "--websites", "a,b",
         "--scope", "read", "--ttl", "30d"],
        env={"JWT_SECRET": "x" * 40, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.split()[-1], "x" * 40, algorithms=["HS256"])
    assert claims["websites"] == ["a", "b"] and claims["scope"] == "read"
    assert claims["exp"] - claims["iat"] == 30 * 86400


def test_schema_file_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed.strip() == str(schema).strip(), (
        "schema.graphql drifted: run `footfall schema > schema.graphql`"
    )


def test_doctor_reports_each_part(database_url: str, app: object) -> None:
    import os

    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run([sys.executable, "-m", "graph.cli", "doctor"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = {line.split()[1]: line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert lines["database"] == "ok" and lines["migrations"] == "ok"
    assert lines["redis"] == "MISSING"  # nothing listens on port 1
    assert lines["timescaledb"] == "ok"
    assert lines["funnel"] == "ok"  # the funnel rollup line (informational)
    assert "funnels stored" in out.stdout
    assert out.returncode == 1


def test_every_type_field_and_argument_is_described() -> None:
    """style.md §7: every field has a description (units, time zone, limits)."""
    from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType

    missing = []
    for name, t in schema._schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(t, GraphQLEnumType) and not t.description:
            missing.append(f"enum {name}")
        if isinstance(t, GraphQLObjectType | GraphQLInputObjectType):
            if not t.description:
                missing.append(f"type {name}")
            for fname, f in t.fields.items():
                if not f.description:
                    missing.append(f"{name}.{fname}")
                for arg, a in getattr(f, "args", {}).items():
                    if not a.description:
                        missing.append(f"{name}.{fname}({arg})")
    assert not missing, missing
