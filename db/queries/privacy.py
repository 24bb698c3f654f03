"""SQL for privacy operations: per-visitor erasure and export, per-website deletion and
anonymisation, account exports. Every change runs in one transaction with its
``audit_log`` rows (actor, action, website_id, counts), so it happens entirely or not
at all and is always recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from db.errors import translated
from db.queries.stats_days_store import HOLD_DAYS_SQL

_COUNT = "WITH d AS ({}) SELECT count(*) FROM d"
_EVENT_COLS = (
    "id::text AS id, ts, event_type, visitor_id, session_id, page, referrer, referrer_host,"
    " utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, city, browser,"
    " os, device, screen, time_on_page, properties, received_at"
)
_SESSION_COLS = (
    "session_id, visitor_id, started_at, last_seen, entry_page, exit_page, pageviews, events,"
    " referrer, referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content,"
    " country, city, browser, os, device"
)


async def _audit(conn: asyncpg.Connection, actor: str, action: str, site: str | None,
                 detail: dict[str, Any]) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO audit_log (actor, action, website_id, detail) VALUES ($1, $2, $3, $4)",
        actor, action, site, detail,
    )  # fmt: skip


# The day rollup (migration 014) keeps visitor ids beside their numbers: a deleted or
# anonymised visitor's goes at once (the days they were in are dirty, so no stored set
# is used before it is computed again); a website's whole data takes its days along.
_FORGET_NUMBER = "DELETE FROM visitor_numbers WHERE website_id = $1 AND visitor_id = $2"
_FORGET_DAYS = "DELETE FROM stats_day_sites WHERE website_id = $1"


async def delete_visitor(
    pool: asyncpg.Pool, website_id: str, visitor_id: str, actor: str
) -> dict[str, int]:
    """Delete one visitor's events and sessions of one website; counts of rows deleted."""
    async with translated(), pool.acquire() as conn, conn.transaction():
        await conn.execute(HOLD_DAYS_SQL, website_id)
        events = await conn.fetchval(
            _COUNT.format("DELETE FROM events WHERE website_id = $1 AND visitor_id = $2"
                          " RETURNING 1"), website_id, visitor_id)  # fmt: skip
        sessions = await conn.fetchval(
            _COUNT.format("DELETE FROM sessions WHERE website_id = $1 AND visitor_id = $2"
                          " RETURNING 1"), website_id, visitor_id)  # fmt: skip
        counts = {"events": int(events), "sessions": int(sessions)}
        await conn.execute(_FORGET_NUMBER, website_id, visitor_id)
        await _audit(
            conn, actor, "delete_visitor", website_id, {"visitor_id": visitor_id, **counts}
        )
    return counts


async def visitor_records(
    pool: asyncpg.Pool, website_id: str, visitor_id: str
) -> AsyncIterator[dict[str, Any]]:
    """The visitor's events (by time) then sessions (by start), as dicts with a
    ``record`` key (``event``/``session``); read through a cursor, 500 rows at a time."""
    async with translated(), pool.acquire() as conn, conn.transaction(readonly=True):
        async for r in conn.cursor(
            f"SELECT {_EVENT_COLS} FROM events WHERE website_id = $1 AND visitor_id = $2"
            " ORDER BY ts, id", website_id, visitor_id, prefetch=500,
        ):  # fmt: skip
            yield {"record": "event", "website_id": website_id, **dict(r)}
        async for r in conn.cursor(
            f"SELECT {_SESSION_COLS} FROM sessions WHERE website_id = $1 AND visitor_id = $2"
            " ORDER BY started_at, session_id", website_id, visitor_id, prefetch=500,
        ):  # fmt: skip
            yield {"record": "session", "website_id": website_id, **dict(r)}


async def owned_websites(pool: asyncpg.Pool, owner_id: str) -> list[str]:
    """Ids of the websites whose ``owner_id`` is this account, sorted."""
    async with translated():
        rows = await pool.fetch("SELECT id FROM websites WHERE owner_id = $1 ORDER BY id", owner_id)
    return [r["id"] for r in rows]


async def delete_website_data(
    pool: asyncpg.Pool, website_ids: list[str], actor: str, action: str
) -> dict[str, int]:
    """Delete the events, sessions and funnels of these websites (the website rows stay);
    one transaction, one audit row per website. Total counts."""
    totals = {"events": 0, "sessions": 0, "funnels": 0}
    async with translated(), pool.acquire() as conn, conn.transaction():
        for site in website_ids:
            await conn.execute(HOLD_DAYS_SQL, site)
            counts = {
                table: int(await conn.fetchval(_COUNT.format(
                    f"DELETE FROM {table} WHERE website_id = $1 RETURNING 1"), site))
                for table in ("events", "sessions", "funnels")
            }  # fmt: skip
            for k, v in counts.items():
                totals[k] += v
            await conn.execute(_FORGET_DAYS, site)
            await _audit(conn, actor, action, site, counts)
    return totals


def _anon(column: str) -> str:
    """SQL: ``anon_`` + 16 hex of SHA-256(key ‖ value); values already anonymous stay."""
    return (
        f"CASE WHEN {column} LIKE 'anon\\_%' THEN {column} ELSE 'anon_' || "
        f"left(encode(sha256($2::bytea || convert_to({column}, 'UTF8')), 'hex'), 16) END"
    )


_NO_QUERY = "NULLIF(split_part(split_part(referrer, '#', 1), '?', 1), '')"


async def anonymize(
    pool: asyncpg.Pool, website_ids: list[str], actor: str, visitor_id: str | None = None
) -> dict[str, int]:
    """Irreversibly anonymise the events and sessions of these websites, or of one
    visitor of them (see ``resolvers.privacy``); one transaction, audited (never with the
    visitor's id). Rows changed per table."""
    key = secrets.token_bytes(32)  # used for this run only, never stored
    sets = (
        f"visitor_id = {_anon('visitor_id')}, session_id = {_anon('session_id')},"
        f" city = NULL, referrer = {_NO_QUERY}"
    )
    rows = "website_id = $1" + (" AND visitor_id = $3" if visitor_id is not None else "")
    args = [key] if visitor_id is None else [key, visitor_id]
    action = "anonymize" if visitor_id is None else "anonymize_visitor"
    totals = {"events": 0, "sessions": 0}
    async with translated(), pool.acquire() as conn, conn.transaction():
        for site in website_ids:
            await conn.execute(HOLD_DAYS_SQL, site)
            counts = {
                table: int(await conn.fetchval(_COUNT.format(
                    f"UPDATE {table} SET {sets} WHERE {rows} RETURNING 1"), site, *args))
                for table in ("events", "sessions")
            }  # fmt: skip
            for k, v in counts.items():
                totals[k] += v
            if visitor_id is None:
                await conn.execute(_FORGET_DAYS, site)
            else:
                await conn.execute(_FORGET_NUMBER, site, visitor_id)
            await _audit(conn, actor, action, site, counts)
    return totals


async def account_export(
    pool: asyncpg.Pool, website_ids: list[str], max_events: int
) -> dict[str, Any]:
    """Events (newest ``max_events``), their total, daily totals and funnels of the sites."""
    async with translated(), pool.acquire() as conn, conn.transaction(readonly=True):
        total = await conn.fetchval(
            "SELECT count(*) FROM events WHERE website_id = ANY($1::text[])", website_ids
        )
        events = await conn.fetch(
            f"SELECT website_id, {_EVENT_COLS} FROM events WHERE website_id = ANY($1::text[])"
            " ORDER BY ts DESC, id LIMIT $2", website_ids, max_events,
        )  # fmt: skip
        daily = await conn.fetch(
            """SELECT website_id, (ts AT TIME ZONE 'UTC')::date AS date,
                      count(*) FILTER (WHERE event_type = 'pageview') AS page_views,
                      count(*) FILTER (WHERE event_type NOT IN
                          ('pageview', 'session_start', 'session_end')) AS custom_events,
                      count(DISTINCT visitor_id) AS unique_visitors,
                      count(DISTINCT session_id) AS sessions
               FROM events WHERE website_id = ANY($1::text[])
               GROUP BY 1, 2 ORDER BY 1, 2""",
            website_ids,
        )
        funnels = await conn.fetch(
            """SELECT id::text AS id, website_id, name, description, steps, is_active,
                      created_at, updated_at
               FROM funnels WHERE website_id = ANY($1::text[]) ORDER BY website_id, created_at""",
            website_ids,
        )
    return {
        "events": [dict(r) for r in events],
        "events_count": int(total),
        "daily": [dict(r) for r in daily],
        "funnels": [dict(r) for r in funnels],
    }
