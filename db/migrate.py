"""Migration runner over numbered ``migrations/NNN_name.sql`` files.

Each file runs once, in its own transaction, and is recorded in ``schema_migrations``.
A session-level advisory lock makes concurrent runs (two processes starting at once)
safe: the second waits, then finds nothing left to do. Files named
``*.timescale.sql`` run only on the TimescaleDB path; ``*.plain.sql`` only without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

_LOCK_KEY = 0x466F6F7466616C6C  # "Footfall"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+(\.timescale|\.plain)?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    path_kind: str  # "both", "timescale" or "plain"


def discover() -> list[Migration]:
    """All migration files shipped in the ``migrations`` package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("migrations").iterdir():
        m = _NAME.match(entry.name)
        if not m:
            continue
        kind = (m.group(2) or ".both")[1:]
        found.append(Migration(int(m.group(1)), entry.name, entry.read_text("utf-8"), kind))
    found.sort(key=lambda mig: (mig.version, mig.name))
    return found


async def migrate(conn: asyncpg.Connection, *, timescale: bool) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for mig in discover():
            if mig.name in done:
                continue
            if mig.path_kind == "timescale" and not timescale:
                continue
            if mig.path_kind == "plain" and timescale:
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", mig.name)
            applied_now.append(mig.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
