"""SQL for the ``funnels`` table (definitions). Reports live in ``funnel_report.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from db.errors import translated


@dataclass(frozen=True)
class FunnelRow:
    """A stored funnel. ``steps``: list of {name, type, pattern, properties}."""

    id: str
    website_id: str
    name: str
    description: str | None
    steps: list[dict[str, Any]]
    is_active: bool
    window_seconds: int
    count_by: str
    ordering: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime


_COLS = (
    "id::text AS id, website_id, name, description, steps, is_active, window_seconds,"
    " count_by, ordering, user_id, created_at, updated_at"
)
_CHANGEABLE = ("name", "description", "steps", "is_active", "window_seconds", "count_by",
               "ordering")  # fmt: skip

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


def _row(r: asyncpg.Record) -> FunnelRow:
    return FunnelRow(**dict(r))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def get_many(conn: Conn, ids: list[str]) -> list[FunnelRow | None]:
    """Funnels by id, in the order of ``ids`` (None for a miss or a malformed id)."""
    keys = [k for k in (_uuid(i) for i in ids) if k is not None]
    async with translated():
        rows = await conn.fetch(f"SELECT {_COLS} FROM funnels WHERE id = ANY($1::uuid[])", keys)
    found = {r["id"]: _row(r) for r in rows}
    return [found.get(str(k)) if (k := _uuid(i)) else None for i in ids]


async def list_for_websites(
    conn: Conn, website_ids: list[str], active_only: bool = False
) -> list[FunnelRow]:
    """Funnels of these websites, newest first (ties: id)."""
    async with translated():
        rows = await conn.fetch(
            f"""SELECT {_COLS} FROM funnels
                WHERE website_id = ANY($1::text[]) AND (is_active OR NOT $2)
                ORDER BY website_id, created_at DESC, id""",
            website_ids, active_only,
        )  # fmt: skip
    return [_row(r) for r in rows]


async def list_all(conn: Conn) -> list[FunnelRow]:
    """Every funnel of every website, by id (the funnel rollup's sealer walks them)."""
    async with translated():
        rows = await conn.fetch(f"SELECT {_COLS} FROM funnels ORDER BY id")
    return [_row(r) for r in rows]


async def insert(conn: Conn, values: dict[str, Any]) -> FunnelRow:
    async with translated():
        r = await conn.fetchrow(
            f"""INSERT INTO funnels (id, website_id, name, description, steps, is_active,
                                     window_seconds, count_by, ordering, user_id)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) RETURNING {_COLS}""",
            uuid.uuid4(), values["website_id"], values["name"], values.get("description"),
            values["steps"], values["is_active"], values["window_seconds"], values["count_by"],
            values["ordering"], values.get("user_id"),
        )  # fmt: skip
    assert r is not None
    return _row(r)


async def update(conn: Conn, funnel_id: str, changes: dict[str, Any]) -> FunnelRow | None:
    """Apply ``changes`` (keys of ``_CHANGEABLE``); None when the funnel is gone."""
    sets = [k for k in _CHANGEABLE if k in changes]
    key = _uuid(funnel_id)
    if key is None:
        return None
    assignments = "".join(
        f"{k} = ${i + 2}{'::jsonb' if k == 'steps' else ''}, " for i, k in enumerate(sets)
    )
    async with translated():
        r = await conn.fetchrow(
            f"UPDATE funnels SET {assignments}updated_at = now() WHERE id = $1 RETURNING {_COLS}",
            key, *[changes[k] for k in sets],
        )  # fmt: skip
    return _row(r) if r else None


async def delete(conn: Conn, funnel_id: str) -> bool:
    key = _uuid(funnel_id)
    if key is None:
        return False
    async with translated():
        gone = await conn.fetchval("DELETE FROM funnels WHERE id = $1 RETURNING id", key)
    return gone is not None
