"""Storing the day rollup (migration 014): announcing a website's sealing bound, the
days to compute, and computing and storing one day.

Protocol per website (see the migration): raise ``sealing_to`` and commit; take the
writers' advisory lock exclusively once (writes that read the old bound have then
committed); then each day in its own REPEATABLE READ transaction: read the day's dirty
``seq``, number its new visitors, compute its rows, replace the stored day and delete
the dirty mark only if its ``seq`` is unchanged. A write that commits meanwhile leaves
the mark (a newer ``seq``), so the day stays unusable until a later pass.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from pyroaring import BitMap

from db.queries.stats_days import DAY_DIMENSIONS, HOURS_CODE, SUMS, compute_day

WRITERS_LOCK = 1717990509
HOUR = timedelta(hours=1)

#: Erasures and website deletions run this first: a new version of the website's row.
#: A sealing transaction locks that row first (``seal_day``), so one whose snapshot
#: predates the erasure fails instead of numbering erased visitors again after their
#: numbers went, one that holds the row is waited for (its numbers are then visible to
#: the erasure), and the two never deadlock.
HOLD_DAYS_SQL = "UPDATE stats_day_sites SET next_number = next_number WHERE website_id = $1"

_ANNOUNCE_SQL = """
INSERT INTO stats_day_sites AS w (website_id, zone, sealing_to) VALUES ($1, $2, $3)
ON CONFLICT (website_id) DO UPDATE SET
    zone = EXCLUDED.zone,
    sealing_to = CASE WHEN w.zone = EXCLUDED.zone THEN greatest(w.sealing_to, EXCLUDED.sealing_to)
                      ELSE EXCLUDED.sealing_to END
"""

_TODO_SQL = """
SELECT g.day::date AS day
FROM generate_series($2::date, $3::date - 1, interval '1 day') AS g (day)
LEFT JOIN stats_days t ON t.website_id = $1 AND t.day = g.day::date
LEFT JOIN stats_day_dirty x ON x.website_id = $1 AND x.day = g.day::date
WHERE t.day IS NULL OR x.day IS NOT NULL
ORDER BY 1 DESC
"""


async def announce(pool: asyncpg.Pool, website_id: str, zone: str, sealing_to: datetime) -> None:
    """Record the website's zone (a new zone drops its stored days) and raise its bound,
    then wait for the writes that read the old bound."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            old = await conn.fetchval(
                "SELECT zone FROM stats_day_sites WHERE website_id = $1 FOR UPDATE", website_id)
            if old is not None and old != zone:  # other instants: every stored day goes
                await conn.execute("DELETE FROM stats_days WHERE website_id = $1", website_id)
                await conn.execute("DELETE FROM stats_day_dirty WHERE website_id = $1", website_id)
            await conn.execute(_ANNOUNCE_SQL, website_id, zone, sealing_to)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                               WRITERS_LOCK, website_id)  # fmt: skip


async def days_to_seal(pool: asyncpg.Pool, website_id: str, first: date, end: date) -> list[date]:
    """Days in [first, end) that are missing or dirty, newest first."""
    return [r["day"] for r in await pool.fetch(_TODO_SQL, website_id, first, end)]


async def prune(pool: asyncpg.Pool, website_id: str, first: date) -> None:
    """Drop stored days before ``first`` and the numbers of visitors last seen before it."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM stats_days WHERE website_id = $1 AND day < $2",
                           website_id, first)  # fmt: skip
        await conn.execute("DELETE FROM stats_day_dirty WHERE website_id = $1 AND day < $2",
                           website_id, first)  # fmt: skip
        await conn.execute("DELETE FROM visitor_numbers WHERE website_id = $1 AND last_day < $2",
                           website_id, first)  # fmt: skip


def _merged(
    rows: list[asyncpg.Record], lo: datetime, hi: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The day's value rows (dim, key, bitmap, counts) and hour rows (lo, hi, bitmap,
    counts: every hour from ``lo``, the last one cut at ``hi``, empty ones included)
    from the grouped rows."""
    acc: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [BitMap(), 0, 0, 0, 0, 0, 0])
    hours: dict[datetime, list[Any]] = defaultdict(lambda: [BitMap(), 0, 0, 0, 0, 0, 0])
    for r in rows:
        a = hours[r["bucket"]] if r["code"] == HOURS_CODE else acc[(int(r["code"]), r["key"] or "")]
        if r["nums"]:
            a[0].update(r["nums"])
        assert not r["ids"], "every visitor of a sealed day has a number"
        for i, col in enumerate(SUMS, start=1):
            a[i] += r[col] or 0
    for a in [*acc.values(), *hours.values()]:
        a[0].run_optimize()  # a day's new visitors have consecutive numbers
    values = [
        ("" if code == 0 else DAY_DIMENSIONS[code - 1], key, a[0].serialize(), *a[1:])
        for (code, key), a in acc.items()
    ]
    starts = [lo]
    while starts[-1] + HOUR < hi:
        starts.append(starts[-1] + HOUR)
    spans = zip(starts, [*starts[1:], hi], strict=True)
    return values, [(a, b, (h := hours[a])[0].serialize(), *h[1:]) for a, b in spans]


HOUR_COLUMNS = ("website_id", "day", "lo", "hi", "visitors", "pageviews", "events",
                "visits", "bounces", "duration", "spv")  # fmt: skip
VALUE_COLUMNS = ("website_id", "day", "dim", "key", "visitors", "pageviews", "events",
                 "visits", "bounces", "duration", "spv")  # fmt: skip


async def seal_day(
    pool: asyncpg.Pool, website_id: str, day: date, lo: datetime, hi: datetime
) -> bool:
    """Compute and store ``day`` ([lo, hi)); False when a write or another sealer
    changed it meanwhile (it stays dirty or is stored by the other)."""
    async with pool.acquire() as conn:
        try:
            async with conn.transaction(isolation="repeatable_read"):
                # the website's row first: an erasure committed after this snapshot
                # (db/queries/privacy.py) makes this fail, a later one waits for it
                # (NO KEY: writers marking days hold KEY SHARE locks on the row)
                await conn.execute("SELECT 1 FROM stats_day_sites WHERE website_id = $1"
                                   " FOR NO KEY UPDATE", website_id)  # fmt: skip
                seq = await conn.fetchval(
                    "SELECT seq FROM stats_day_dirty WHERE website_id = $1 AND day = $2",
                    website_id, day)  # fmt: skip
                values, hours = _merged(await compute_day(conn, website_id, day, lo, hi), lo, hi)
                await conn.execute("DELETE FROM stats_days WHERE website_id = $1 AND day = $2",
                                   website_id, day)  # fmt: skip
                await conn.execute(
                    "INSERT INTO stats_days (website_id, day, lo, hi) VALUES ($1, $2, $3, $4)",
                    website_id, day, lo, hi)  # fmt: skip
                await conn.copy_records_to_table(
                    "stats_day_values", columns=VALUE_COLUMNS,
                    records=[(website_id, day, *v) for v in values])  # fmt: skip
                await conn.copy_records_to_table(
                    "stats_day_hours", columns=HOUR_COLUMNS,
                    records=[(website_id, day, *h) for h in hours])  # fmt: skip
                if seq is not None:
                    await conn.execute(
                        "DELETE FROM stats_day_dirty WHERE website_id = $1 AND day = $2"
                        " AND seq = $3", website_id, day, seq)  # fmt: skip
        except (asyncpg.SerializationError, asyncpg.UniqueViolationError):
            return False
    return True
