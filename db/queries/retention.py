"""Retention on the plain-PostgreSQL path (TimescaleDB uses its retention policy)."""

from __future__ import annotations

import asyncpg

from db.errors import translated


async def delete_older_than(pool: asyncpg.Pool, days: int, *, batch: int = 50_000) -> int:
    """Delete events (and sessions that ended) more than ``days`` days ago; audited.
    Deletes in batches of ``batch`` rows so that no single transaction grows large."""
    total = 0
    async with translated():
        while True:
            async with pool.acquire() as conn, conn.transaction():
                n = await conn.fetchval(
                    """WITH doomed AS (
                           SELECT website_id, id, ts FROM events
                           WHERE ts < now() - make_interval(days => $1) LIMIT $2)
                       , d AS (DELETE FROM events e USING doomed
                           WHERE e.website_id = doomed.website_id AND e.id = doomed.id
                             AND e.ts = doomed.ts RETURNING 1)
                       SELECT count(*) FROM d""",
                    days,
                    batch,
                )
                total += int(n)
                if n < batch:
                    await conn.execute(
                        "DELETE FROM sessions WHERE last_seen < now() - make_interval(days => $1)",
                        days,
                    )
                    if total:
                        await conn.execute(
                            "INSERT INTO audit_log (actor, action, detail) VALUES ($1, $2, $3)",
                            "retention", "retention_delete", {"events": total, "days": days},
                        )  # fmt: skip
                    return total


RETENTION_LOCK = 0x666F6F74  # pg advisory lock key: one retention run per database at a time


async def delete_older_than_once(pool: asyncpg.Pool, days: int) -> int | None:
    """``delete_older_than`` unless another process is running it right now (every API
    worker schedules retention at the same moment): then ``None`` and nothing done."""
    async with translated(), pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK):
            return None
        try:
            return await delete_older_than(pool, days)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)
