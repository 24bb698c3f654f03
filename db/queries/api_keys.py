"""SQL for ``api_keys``: long-lived keys stored as SHA-256 hex hashes (never the key)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

from db.errors import translated

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class ApiKeyRow:
    """A key's metadata. ``websites`` None = all websites; ``revoked_at`` None = live."""

    id: str
    name: str
    websites: list[str] | None
    scope: str
    created_at: datetime
    revoked_at: datetime | None


_COLS = "id::text AS id, name, websites, scope, created_at, revoked_at"


def _row(r: asyncpg.Record) -> ApiKeyRow:
    d = dict(r)
    d["websites"] = list(d["websites"]) if d["websites"] is not None else None
    return ApiKeyRow(**d)


async def insert(
    conn: Conn, *, name: str, key_hash: str, websites: list[str] | None, scope: str
) -> ApiKeyRow:
    async with translated():
        r = await conn.fetchrow(
            f"""INSERT INTO api_keys (id, name, key_hash, websites, scope)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_COLS}""",
            uuid.uuid4(), name, key_hash, websites, scope,
        )  # fmt: skip
    assert r is not None
    return _row(r)


async def find_live(conn: Conn, key_hash: str) -> ApiKeyRow | None:
    """The unrevoked key with this hash, if any."""
    async with translated():
        r = await conn.fetchrow(
            f"SELECT {_COLS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
        )
    return _row(r) if r else None


async def get(conn: Conn, key_id: str) -> ApiKeyRow | None:
    async with translated():
        r = await conn.fetchrow(f"SELECT {_COLS} FROM api_keys WHERE id = $1::uuid", key_id)
    return _row(r) if r else None


async def list_all(conn: Conn) -> list[ApiKeyRow]:
    """Every key, newest first (revoked ones included)."""
    async with translated():
        rows = await conn.fetch(f"SELECT {_COLS} FROM api_keys ORDER BY created_at DESC, id")
    return [_row(r) for r in rows]


async def revoke(pool: asyncpg.Pool, key_id: str, actor: str) -> str | None:
    """Mark the key revoked (audited); return its hash, None if absent or already revoked."""
    async with translated(), pool.acquire() as conn, conn.transaction():
        key_hash = await conn.fetchval(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL"
            " RETURNING key_hash",
            key_id,
        )
        if key_hash is not None:
            await conn.execute(
                "INSERT INTO audit_log (actor, action, detail) VALUES ($1, $2, $3)",
                actor, "revoke_api_key", {"api_key_id": key_id},
            )  # fmt: skip
    return str(key_hash) if key_hash is not None else None
