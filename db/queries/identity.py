"""SQL behind visitor and session identity: daily salts and the latest-session lookup."""

from __future__ import annotations

import os
from datetime import date, datetime

import asyncpg

from db.errors import translated


async def salt_for(pool: asyncpg.Pool, day: date) -> bytes:
    """The salt of UTC ``day`` (created on first use); salts of earlier days are deleted."""
    async with translated():
        salt = await pool.fetchval(
            """INSERT INTO visitor_salts (day, salt) VALUES ($1, $2)
               ON CONFLICT (day) DO UPDATE SET day = EXCLUDED.day RETURNING salt""",
            day,
            os.urandom(32),
        )
        await pool.execute("DELETE FROM visitor_salts WHERE day < $1", day)
    return bytes(salt)


async def latest_sessions(
    pool: asyncpg.Pool, website_id: str, visitor_ids: list[str]
) -> dict[str, tuple[str, datetime]]:
    """Each visitor's most recent session: ``{visitor_id: (session_id, last_seen)}``.

    Committed events only: sessions of requests still in flight are not seen here
    (``resolvers.session_claims`` covers those)."""
    async with translated():
        rows = await pool.fetch(
            """SELECT DISTINCT ON (visitor_id) visitor_id, session_id, last_seen
               FROM sessions WHERE website_id = $1 AND visitor_id = ANY($2::text[])
               ORDER BY visitor_id, last_seen DESC""",
            website_id,
            visitor_ids,
        )
    return {r["visitor_id"]: (r["session_id"], r["last_seen"]) for r in rows}
