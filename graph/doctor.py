"""``footfall doctor``: check what this installation has and what is missing —
database, TimescaleDB features, Redis, GeoIP database, GraphiQL assets — and print one
line per check. Exit code 0 when nothing required is missing, 1 otherwise."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from db import timescale
from db.embedded import EmbeddedPostgres
from graph.graphiql import have_assets
from graph.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


async def _database(settings: Settings) -> list[Check]:
    embedded = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = await asyncio.to_thread(embedded.start)
    checks: list[Check] = []
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except Exception as exc:
        return [Check("database", False, f"cannot connect: {type(exc).__name__}: {exc}")]
    try:
        version = await conn.fetchval("SHOW server_version")
        where = "embedded" if embedded else "DATABASE_URL"
        checks.append(Check("database", True, f"PostgreSQL {version} ({where})"))
        ok15 = int(str(await conn.fetchval("SHOW server_version_num"))) >= 150000
        checks.append(Check("postgres >= 15", ok15, "yes" if ok15 else "upgrade PostgreSQL"))
        migrated = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        checks.append(Check("migrations", bool(migrated),
                            "applied" if migrated else "run `footfall migrate`"))  # fmt: skip
        available = await timescale.extension_available(conn)
        hyper = await timescale.events_is_hypertable(conn)
        detail = ("hypertable, compression and retention active" if hyper else
                  "available but not in use (TIMESCALE=auto|on enables it)" if available else
                  "not installed: plain PostgreSQL path (same tables, same queries)")  # fmt: skip
        checks.append(Check("timescaledb", True, detail, required=False))
        if migrated:
            checks.append(await _funnel_rollup(conn, settings, hyper))
    finally:
        await conn.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    return checks


async def _funnel_rollup(conn: asyncpg.Connection, settings: Settings, hyper: bool) -> Check:
    """How far the funnel attempt rollup is (informational: reports are exact anyway)."""
    if not settings.funnel_rollup or hyper:
        why = "FUNNEL_ROLLUP=off" if not settings.funnel_rollup else "not on TimescaleDB"
        return Check("funnel rollup", True, f"off ({why}): reports read events", required=False)
    if await conn.fetchval("SELECT to_regclass('funnel_rollups') IS NULL"):
        return Check("funnel rollup", True, "not migrated yet", required=False)
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM funnels) AS funnels, count(r.funnel_id) AS sealed,
                  extract(epoch FROM max(now() - r.sealed_until))::int AS behind
           FROM funnel_rollups r"""
    )
    assert row is not None
    behind = row["behind"]
    detail = f"{row['sealed']} of {row['funnels']} funnels stored" + (
        f", the furthest one ends {behind} s before now (600 s: current)"
        if behind is not None
        else ""
    )
    return Check("funnel rollup", True, detail, required=False)


async def _redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", True, "not configured: in-process cache, pub/sub and rate limits "
                     "(one process only)", required=False)  # fmt: skip
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        info = await client.info("server")
        return Check("redis", True, f"Redis {info.get('redis_version')} at REDIS_URL")
    except Exception as exc:
        return Check("redis", False, f"REDIS_URL does not answer: {type(exc).__name__}")
    finally:
        await client.aclose()


def _geoip(settings: Settings) -> Check:
    if settings.geoip_db is None:
        return Check("geoip", True, "GEOIP_DB not set: country/city from CDN headers only",
                     required=False)  # fmt: skip
    try:
        import maxminddb

        with maxminddb.open_database(str(settings.geoip_db)) as reader:
            kind = reader.metadata().database_type
        return Check("geoip", True, f"{settings.geoip_db} ({kind})")
    except Exception as exc:
        return Check("geoip", False, f"{settings.geoip_db}: {exc}")


async def run(settings: Settings) -> int:
    checks = [*await _database(settings), await _redis(settings), _geoip(settings)]
    checks.append(Check("graphiql assets", have_assets(),
                        "installed" if have_assets() else "run `footfall assets`", required=False))  # fmt: skip
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else ("MISSING" if c.required else "warn")
        print(f"{mark:7} {c.name.ljust(width)}  {c.detail}")
    return 0 if all(c.ok or not c.required for c in checks) else 1
