"""Retention on the plain-PostgreSQL path (TimescaleDB uses its retention policy)."""

from __future__ import annotations

import asyncpg

from db.errors import translated


def _batch_sql(one_website: bool) -> str:
    """One batch: a website's oldest events before the cutoff ``$1`` (index
    ``events_site_ts``; ``$3`` the website), or any (events of websites not listed)."""
    where = "website_id = $3 AND ts < $1" if one_website else "ts < $1"
    return f"""WITH doomed AS (
    SELECT website_id, id, ts FROM events WHERE {where} ORDER BY website_id, ts LIMIT $2)
, d AS (DELETE FROM events e USING doomed
    WHERE e.website_id = doomed.website_id AND e.id = doomed.id AND e.ts = doomed.ts
    RETURNING 1)
SELECT count(*) FROM d"""  # nosec B608 (a constant condition; values are bound)


async def delete_older_than(pool: asyncpg.Pool, days: int, *, batch: int = 50_000) -> int:
    """Delete events (and sessions that ended) more than ``days`` days ago; audited.

    Deletes in batches of ``batch`` rows so that no single transaction grows large, per
    website and oldest first: every batch then starts at its website's oldest event, so
    the funnel rollup's trigger (migrations 009, 011) moves the sealed interval's start
    past it rather than unsealing what is stored after it (which it must do when events
    lie between that start and the batch). A last sweep takes events of websites no longer
    listed."""
    total = 0
    async with translated():
        cutoff = await pool.fetchval("SELECT now() - make_interval(days => $1)", days)
        sites: list[str | None] = [r["id"] for r in await pool.fetch("SELECT id FROM websites")]
        for site in [*sites, None]:
            sql, args = (_batch_sql(True), [site]) if site else (_batch_sql(False), [])
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    n = int(await conn.fetchval(sql, cutoff, batch, *args))
                total += n
                if n < batch:
                    break
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM sessions WHERE last_seen < $1", cutoff)
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
