"""SQL used only by the Seentics REST compatibility routes (no metric is computed here):
a sample of each custom event's properties, and the admin listing of funnels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from db.errors import translated
from db.queries.funnels import _COLS, FunnelRow, _row


async def event_property_samples(
    pool: asyncpg.Pool, website_id: str, lo: datetime, hi: datetime, names: list[str]
) -> dict[str, dict[str, Any]]:
    """For each custom event name, the properties of its latest event in ``[lo, hi)``
    that has a non-empty properties object (names without one are absent)."""
    if not names:
        return {}
    async with translated():
        rows = await pool.fetch(
            """SELECT DISTINCT ON (e.event_type) e.event_type, e.properties
               FROM events e
               WHERE e.website_id = $1 AND e.ts >= $2 AND e.ts < $3
                 AND e.event_type = ANY($4::text[])
                 AND jsonb_typeof(e.properties) = 'object' AND e.properties <> '{}'::jsonb
               ORDER BY e.event_type, e.ts DESC, e.id DESC""",
            website_id, lo, hi, names,
        )  # fmt: skip
    return {r["event_type"]: r["properties"] for r in rows}


async def funnel_counts(pool: asyncpg.Pool, website_ids: list[str] | None) -> tuple[int, int]:
    """(all, active) funnels of these websites (None = every website)."""
    async with translated():
        row = await pool.fetchrow(
            """SELECT count(*) AS total, count(*) FILTER (WHERE is_active) AS active
               FROM funnels WHERE $1::text[] IS NULL OR website_id = ANY($1::text[])""",
            website_ids,
        )
    assert row is not None
    return int(row["total"]), int(row["active"])


async def funnel_page(
    pool: asyncpg.Pool, website_ids: list[str] | None, limit: int, offset: int
) -> list[FunnelRow]:
    """Funnels of these websites (None = every website), newest first (ties: id)."""
    async with translated():
        rows = await pool.fetch(
            f"""SELECT {_COLS} FROM funnels
                WHERE $1::text[] IS NULL OR website_id = ANY($1::text[])
                ORDER BY created_at DESC, id LIMIT $2 OFFSET $3""",
            website_ids, limit, offset,
        )  # fmt: skip
    return [_row(r) for r in rows]
