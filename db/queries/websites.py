"""SQL for the ``websites`` table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import ConflictError, translated
from db.queries.stats_days_store import HOLD_DAYS_SQL


@dataclass(frozen=True)
class WebsiteRow:
    id: str
    domain: str
    name: str | None
    timezone: str
    is_public: bool
    owner_id: str | None
    created_at: datetime
    updated_at: datetime


_COLS = "id, domain, name, timezone, is_public, owner_id, created_at, updated_at"


def _row(r: asyncpg.Record) -> WebsiteRow:
    return WebsiteRow(**dict(r))


async def get_many(conn: asyncpg.Pool | asyncpg.Connection, ids: list[str]) -> list[WebsiteRow]:
    async with translated():
        rows = await conn.fetch(f"SELECT {_COLS} FROM websites WHERE id = ANY($1::text[])", ids)
    return [_row(r) for r in rows]


async def list_all(
    conn: asyncpg.Pool | asyncpg.Connection, only: list[str] | None = None
) -> list[WebsiteRow]:
    """All websites (or those in ``only``), ordered by id."""
    async with translated():
        if only is None:
            rows = await conn.fetch(f"SELECT {_COLS} FROM websites ORDER BY id")
        else:
            rows = await conn.fetch(
                f"SELECT {_COLS} FROM websites WHERE id = ANY($1::text[]) ORDER BY id", only
            )
    return [_row(r) for r in rows]


async def insert(conn: asyncpg.Pool | asyncpg.Connection, **values: Any) -> WebsiteRow:
    """Insert a website; ``ConflictError`` when the id exists."""
    async with translated():
        r = await conn.fetchrow(
            f"""INSERT INTO websites (id, domain, name, timezone, is_public, owner_id)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLS}""",
            values["id"], values["domain"], values.get("name"), values.get("timezone", "UTC"),
            values.get("is_public", False), values.get("owner_id"),
        )  # fmt: skip
    if r is None:  # pragma: no cover
        raise ConflictError(values["id"])
    return _row(r)


async def update(
    conn: asyncpg.Pool | asyncpg.Connection, website_id: str, changes: dict[str, Any]
) -> WebsiteRow | None:
    allowed = ("domain", "name", "timezone", "is_public", "owner_id")
    sets = [k for k in allowed if k in changes]
    if not sets:
        rows = await get_many(conn, [website_id])
        return rows[0] if rows else None
    assignments = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(sets))
    async with translated():
        r = await conn.fetchrow(
            f"UPDATE websites SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {_COLS}",
            website_id, *[changes[k] for k in sets],
        )  # fmt: skip
    return _row(r) if r else None


async def delete(conn: asyncpg.Connection, website_id: str, actor: str) -> bool:
    """Delete a website and all its data in one transaction, audited."""
    async with translated(), conn.transaction():
        await conn.execute(HOLD_DAYS_SQL, website_id)  # the day rollup's row first
        n_events = await conn.fetchval(
            "WITH d AS (DELETE FROM events WHERE website_id = $1 RETURNING 1)"
            " SELECT count(*) FROM d",
            website_id,
        )
        await conn.execute("DELETE FROM sessions WHERE website_id = $1", website_id)
        gone = await conn.fetchval("DELETE FROM websites WHERE id = $1 RETURNING id", website_id)
        if gone is None:
            return False
        await conn.execute(
            "INSERT INTO audit_log (actor, action, website_id, detail) VALUES ($1, $2, $3, $4)",
            actor, "delete_website", website_id, {"events": n_events},
        )  # fmt: skip
    return True
