"""Streaming export of a website's events (server-side cursor, never all in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

EXPORT_COLUMNS = (
    "id", "website_id", "visitor_id", "session_id", "event_type", "page", "referrer",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "country", "city",
    "browser", "os", "device", "screen", "time_on_page", "properties", "timestamp",
)  # fmt: skip


async def count(pool: asyncpg.Pool, website_id: str, start: datetime, end: datetime) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE website_id = $1 AND ts >= $2 AND ts < $3",
            website_id,
            start,
            end,
        )  # fmt: skip
    )


async def stream(
    pool: asyncpg.Pool, website_id: str, start: datetime, end: datetime, prefetch: int = 2000
) -> AsyncIterator[dict[str, Any]]:
    """Events of ``website_id`` with ``ts`` in [start, end), oldest first, as dicts with
    the tracker's field names (``timestamp`` = event time, UTC)."""
    cols = ", ".join(c if c != "timestamp" else "ts AS timestamp" for c in EXPORT_COLUMNS)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = conn.cursor(
            f"SELECT {cols} FROM events WHERE website_id = $1 AND ts >= $2 AND ts < $3"
            " ORDER BY ts, id",
            website_id, start, end, prefetch=prefetch,
        )  # fmt: skip
        async for record in cursor:
            yield dict(record)
