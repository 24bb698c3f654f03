"""Migration runner over numbered ``migrations/NNN_name.sql`` files.

Each file runs once, in its own transaction, and is recorded in ``schema_migrations``.
A session-level advisory lock makes concurrent runs (two processes starting at once)
safe: the second waits, then finds nothing left to do. Files named
``*.timescale.sql`` run only on the TimescaleDB path; ``*.plain.sql`` only without it.

A file with the line ``-- footfall: outside-transaction`` (index builds on big tables:
``CREATE INDEX CONCURRENTLY``, which writes can go on during and which cannot run in a
transaction) runs statement by statement outside any transaction; it must be safe to
run again after a failure (``DROP INDEX CONCURRENTLY IF EXISTS`` first: a failed build
leaves an invalid index). TimescaleDB refuses concurrent builds on hypertables, so
there the same file runs as one transaction without ``CONCURRENTLY``. The lock is taken
by polling ``pg_try_advisory_lock``, so that a waiting process holds no snapshot that a
concurrent index build would wait for (a blocking wait would deadlock with it).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

_LOCK_KEY = 0x466F6F7466616C6C  # "Footfall"
_LOCK_POLL = 0.1  # seconds between attempts to take the lock
OUTSIDE_TRANSACTION = "-- footfall: outside-transaction"
#: Seconds asyncpg waits for one migration statement (the pool's command timeout is
#: meant for requests).
MIGRATION_TIMEOUT = 24 * 3600.0
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
    await _lock(conn)
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
            await _apply(conn, mig, timescale)
            applied_now.append(mig.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def _lock(conn: asyncpg.Connection) -> None:
    """Take the migration lock, polling (see the module's docstring)."""
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
            return
        await asyncio.sleep(_LOCK_POLL)


def statements(sql: str) -> list[str]:
    """The statements of a migration file (split at ``;`` ending a line; comments kept
    with the statement that follows them)."""
    parts = re.split(r";[ \t]*$", sql, flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip() and not _only_comments(p)]


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


async def _apply(conn: asyncpg.Connection, mig: Migration, timescale: bool) -> None:
    """Run one migration with no statement timeout: the connection may be a request
    pool's, and an index build or a backfill on a big database takes longer."""
    record = "INSERT INTO schema_migrations (name) VALUES ($1)"
    if OUTSIDE_TRANSACTION in mig.sql and not timescale:
        await conn.execute("SET statement_timeout = 0")
        try:
            for statement in statements(mig.sql):
                await conn.execute(statement, timeout=MIGRATION_TIMEOUT)
            await conn.execute(record, mig.name)
        finally:
            await conn.execute("RESET statement_timeout")
        return
    sql = mig.sql.replace(" CONCURRENTLY", "") if OUTSIDE_TRANSACTION in mig.sql else mig.sql
    async with conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute(sql, timeout=MIGRATION_TIMEOUT)
        await conn.execute(record, mig.name)
