"""TimescaleDB feature detection and the few statements only that path runs.

Kept small on purpose: queries never depend on which path is active. With
``TIMESCALE=on`` a missing extension fails start-up; ``auto`` uses it when
``pg_available_extensions`` lists it; ``off`` never does.
"""

from __future__ import annotations

from typing import Literal

import asyncpg


async def extension_available(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        )
    )


async def extension_installed(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        )
    )


async def events_is_hypertable(conn: asyncpg.Connection) -> bool:
    if not await extension_installed(conn):
        return False
    try:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = 'events')"
            )
        )
    except asyncpg.PostgresError:
        return False


async def use_timescale(conn: asyncpg.Connection, mode: Literal["auto", "on", "off"]) -> bool:
    """Decide the storage path once at start-up."""
    if mode == "off":
        return False
    available = await extension_available(conn)
    if mode == "on" and not available:
        raise RuntimeError("TIMESCALE: 'on' but the timescaledb extension is not available")
    return available


async def apply_retention_policy(conn: asyncpg.Connection, retention_days: int) -> None:
    """Replace the hypertable's retention policy with ``retention_days`` (TimescaleDB only)."""
    await conn.execute("SELECT remove_retention_policy('events', if_exists => true)")
    await conn.execute(
        "SELECT add_retention_policy('events', make_interval(days => $1))", retention_days
    )
