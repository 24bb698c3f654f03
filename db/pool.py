"""asyncpg pools: one for writes, one for reads (the replica when configured)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from db.errors import DatabaseUnavailable, translate
from db.queries import funnel_counts_sql


def _jsonb_encode(value: object) -> bytes:
    return b"\x01" + (value.encode() if isinstance(value, str) else orjson.dumps(value))


def _jsonb_decode(data: bytes) -> object:
    return orjson.loads(data[1:])


#: Settings of every pooled session besides the time zone and statement timeout.
#: ``jit``: off — LLVM compilation of the stats scan's many expressions costs ~1 s per
#: cold plan here and never paid back on these queries. ``work_mem``: per sort or hash
#: node; the stats scan sorts ~0.4M partial rows per million events (~60 MB) and would
#: spill to disk at the 4 MB default. ``hash_mem_multiplier``: hash tables may take 4 ×
#: work_mem (PostgreSQL 15's default is 2 ×): the PAGE breakdown hashes ~1M (visitor,
#: page) pairs per million events (~150 MB), which spilled in 5 batches at 128 MB
#: (bench.stats_scan, 10m: scan 2 2.3 → 2.0 s, scan 1 4.0 → 3.6 s); at most 256 MB per
#: hash node. ``plan_cache_mode``: asyncpg prepares every statement; after 5 runs
#: PostgreSQL may switch to a generic plan, blind to the website and range parameters,
#: whose row estimates (~1 % of the real ones) pick sorts and nested loops for the stats
#: scan — planning costs a few ms, a bad plan seconds.
SESSION_SETTINGS = {
    "jit": "off", "work_mem": "64MB", "hash_mem_multiplier": "4",
    "plan_cache_mode": "force_custom_plan",
}  # fmt: skip


#: Planned (never run) on every new connection so that its first real query does not
#: load the catalog entries, indexes and column statistics of the tables it reads
#: (tens of ms per table on a new backend).
WARM_UP = (
    """EXPLAIN SELECT * FROM events WHERE website_id = '' AND event_type = 'pageview'
       AND page COLLATE "C" = '' AND ts >= now() AND visitor_id = '' AND session_id = ''""",
    """EXPLAIN SELECT * FROM sessions WHERE website_id = '' AND session_id = ''
       AND started_at >= now() AND last_seen >= now()""",
    """EXPLAIN SELECT * FROM funnel_attempts a JOIN funnel_rollups r USING (funnel_id)
       JOIN funnels f ON f.id = a.funnel_id JOIN websites w ON w.id = f.website_id
       WHERE a.funnel_id = '00000000-0000-0000-0000-000000000000' AND a.t1 >= now()""",
)


#: Result types that asyncpg looks up in the catalog the first time each connection
#: meets them (arrays other than text[]; reports return int[], float8[] …): one look-up
#: of all at connection start, instead of one per type in a request (its recursive
#: query took 8–14 ms to plan on a new backend).
INTROSPECT = "SELECT NULL::int4[], NULL::int8[], NULL::float8[], NULL::timestamptz[], NULL::uuid[]"


async def _warm_up(conn: asyncpg.Connection) -> None:
    """Plan ``WARM_UP`` and a funnel report, and learn the ``INTROSPECT`` types (the
    plans are skipped while the schema is not there yet)."""
    await conn.fetch(INTROSPECT)
    try:
        for sql in WARM_UP:
            await conn.execute(sql)
        report, args = funnel_counts_sql.warm_up()
        await conn.fetch("EXPLAIN " + report, *args)
    except asyncpg.UndefinedTableError:
        pass


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Binary jsonb codec (so COPY can encode it) using orjson; json as text; catalog
    caches warmed up."""
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "json",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )
    await _warm_up(conn)


async def create_pool(
    dsn: str, *, max_size: int, statement_timeout: float, min_size: int = 1
) -> asyncpg.Pool:
    """Open a pool with UTC sessions, JSON codecs and a statement timeout (seconds)."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min(min_size, max_size),
            max_size=max_size,
            init=_init_connection,
            timeout=5.0,
            command_timeout=max(statement_timeout + 5.0, 10.0),
            server_settings={
                "timezone": "UTC",
                "statement_timeout": str(int(statement_timeout * 1000)),
                "application_name": "footfall",
                **SESSION_SETTINGS,
            },
        )
    except Exception as exc:
        mapped = translate(exc)
        if isinstance(mapped, DatabaseUnavailable):
            raise mapped from exc
        raise
    assert pool is not None
    return pool


@dataclass
class Pools:
    """The write pool and the read pool (same object when no replica is configured)."""

    write: asyncpg.Pool
    read: asyncpg.Pool

    async def close(self) -> None:
        if self.read is not self.write:
            await self.read.close()
        await self.write.close()

    def stats(self) -> dict[str, Any]:
        return {"size": self.write.get_size(), "idle": self.write.get_idle_size()}
