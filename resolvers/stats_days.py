"""The day rollup (migration 014): which plans read stored days, and the sealer that
keeps every website's days stored.

A plan without filters, whose dimensions are stored per day (not PROPERTY) and whose
intervals are DAY, WEEK or MONTH, is answered from the days stored inside each scope
(their visitor sets united, their counts summed) plus the events and sessions of the
rest of the range, read directly — exactly the scan's numbers
(``db/queries/stats_days_merge.py``). Other plans, and scopes that retention has cut
into, go to the scan (``db/queries/stats.py``).

The sealer stores, per website, the local days of its zone from its first event (at
most ``retention_days`` back) up to the day that contains ``now - SETTLE``; writes into
stored days mark them dirty (migration 015's triggers) and the next pass stores them
again. Until then a dirty day is read from its events.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from db.queries import stats as stats_sql
from db.queries.stats import ScanPlan, ScanRow
from db.queries.stats_days import DAY_DIMENSIONS, DAY_INTERVALS, read
from db.queries.stats_days_merge import Meta, merge
from db.queries.stats_days_store import announce, days_to_seal, prune, seal_day
from db.queries.table_stats import analyze_if_stale
from resolvers.counters import STATS_DAY_READS
from resolvers.pass_loop import pass_loop
from resolvers.ranges import midnight
from resolvers.runtime import Runtime

log = logging.getLogger("footfall.stats_days")

#: A day is stored once it ended this long ago (later events mark it dirty).
SETTLE = timedelta(hours=1)
#: Seconds between passes when everything is stored.
INTERVAL = 60.0
#: Seconds from the start of a process to its first pass.
STARTUP_DELAY = 5.0
#: Seconds one pass may spend before it yields to the next (the loop goes on at once).
PASS_BUDGET = 20.0

_STORED = frozenset(DAY_DIMENSIONS)


def uses_days(plan: ScanPlan) -> bool:
    """Whether ``plan`` is read through the day rollup (see the module docstring)."""
    since = plan.rollup_since
    return (
        not plan.filters
        and since is not None
        and all(s.lo >= since for s in plan.scopes)
        and all(d.dimension in _STORED for d in plan.dimensions)
        and set(plan.intervals) <= DAY_INTERVALS
    )


#: Seconds a website that has no stored days (never sealed), or whose days are stored
#: in another zone than a plan's buckets, is sent to the scan: reading a long range
#: through the day rollup without stored days is slower than the scan.
HINT_SECONDS = 30.0
_no_days: dict[tuple[str, str | None], float] = {}  # (website, zone or None) → until


def forget_hints() -> None:
    """Drop what ``scan`` learned about websites without stored days."""
    _no_days.clear()


def _hinted_away(plan: ScanPlan, now: float) -> bool:
    zone = plan.zone if plan.intervals else None
    return any(_no_days.get(key, 0.0) > now for s in plan.scopes
               for key in ((s.website_id, None), (s.website_id, zone)))  # fmt: skip


def _learn(plan: ScanPlan, meta: Meta, now: float) -> None:
    if len(_no_days) > 10_000:
        _no_days.clear()
    for i, s in enumerate(plan.scopes):
        stored_zone = meta.zones.get(i)
        if stored_zone is None:
            _no_days[(s.website_id, None)] = now + HINT_SECONDS
        elif plan.intervals and stored_zone != plan.zone:
            _no_days[(s.website_id, plan.zone)] = now + HINT_SECONDS


async def scan(rt: Runtime, plan: ScanPlan) -> list[ScanRow]:
    """``plan``'s rows, from the day rollup when it applies, else from the scan."""
    now = time.monotonic()
    if not (rt.day_rollup and uses_days(plan)) or _hinted_away(plan, now):
        return await stats_sql.scan(rt.pools.read, plan)
    rows, meta = merge(plan, await read(rt.pools.read, plan))
    STATS_DAY_READS.labels("days" if any(meta.days.values()) else "events").inc()
    _learn(plan, meta, now)
    return rows


# --------------------------------------------------------------------------- sealing


_SITES_SQL = """
SELECT w.id, w.timezone, (SELECT min(e.ts) FROM events e WHERE e.website_id = w.id) AS first,
    d.zone AS stored_zone, d.sealing_to, t.n, t.lo, t.hi,
    EXISTS (SELECT 1 FROM stats_day_dirty x WHERE x.website_id = w.id) AS dirty
FROM websites w LEFT JOIN stats_day_sites d ON d.website_id = w.id
LEFT JOIN LATERAL (SELECT count(*) AS n, min(day) AS lo, max(day) AS hi FROM stats_days t
                   WHERE t.website_id = w.id) t ON true
WHERE $1::text[] IS NULL OR w.id = ANY($1::text[])
ORDER BY w.id
"""

def _complete(row: asyncpg.Record, sealing_to: datetime, first: date, end: date) -> bool:
    """Whether a website's stored days are exactly [first, end), clean, in its zone and
    announced up to ``sealing_to`` (then a pass has nothing to do for it)."""
    if row["stored_zone"] != row["timezone"] or row["sealing_to"] != sealing_to or row["dirty"]:
        return False
    if row["first"] is None or first >= end:
        return int(row["n"]) == 0
    return (int(row["n"]) == (end - first).days and row["lo"] == first
            and row["hi"] == end - timedelta(days=1))  # fmt: skip


async def seal_all(
    pool: asyncpg.Pool, retention_days: int, now: datetime | None = None,
    budget: float = PASS_BUDGET, sites: list[str] | None = None,
) -> bool:
    """One pass over every website (or ``sites``); ``True`` when work is left
    (``budget`` seconds spent, or a write changed a day while it was computed)."""
    now = now or datetime.now(UTC)
    deadline = time.monotonic() + budget
    try:
        return await _pass(pool, retention_days, now, deadline, sites)
    finally:
        forget_hints()  # websites may have stored days now
        for table in DAY_TABLES:  # reads plan from these (autovacuum may be off or behind)
            try:
                await analyze_if_stale(pool, table)
            except Exception:  # statistics are an optimisation: never fail the pass
                log.exception("analysing %s failed", table)


DAY_TABLES = ("visitor_numbers", "stats_days", "stats_day_values", "stats_day_hours")


async def _pass(
    pool: asyncpg.Pool, retention_days: int, now: datetime, deadline: float,
    sites: list[str] | None,
) -> bool:
    more = False
    for row in await pool.fetch(_SITES_SQL, sites):
        site, zone = row["id"], ZoneInfo(row["timezone"])
        end = (now - SETTLE).astimezone(zone).date()  # the first day not stored
        sealing_to = midnight(end, zone)
        kept = (now - timedelta(days=retention_days)).astimezone(zone).date() + timedelta(days=1)
        first = kept if row["first"] is None else max(kept, row["first"].astimezone(zone).date())
        if _complete(row, sealing_to, first, end):
            continue
        await announce(pool, site, row["timezone"], sealing_to)
        await prune(pool, site, kept)
        if row["first"] is not None:
            for day in await days_to_seal(pool, site, first, end):
                if time.monotonic() > deadline:
                    return True
                lo, hi = midnight(day, zone), midnight(day + timedelta(days=1), zone)
                more = not await seal_day(pool, site, day, lo, hi) or more
    return more


#: Session advisory lock: one sealing pass at a time over all processes.
SEALER_LOCK = 1717990510


async def seal_once(
    pool: asyncpg.Pool, retention_days: int, sites: list[str] | None = None
) -> bool:
    """A pass (``seal_all``, over every website or ``sites``) unless another process
    is running one; ``True`` when work is left."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SEALER_LOCK):
            return False
        try:
            return await seal_all(pool, retention_days, sites=sites)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", SEALER_LOCK)


async def day_rollup_loop(rt: Runtime, interval: float = INTERVAL) -> None:
    """Seal forever (``pass_loop``), the first pass ``STARTUP_DELAY`` seconds after start."""
    await pass_loop(lambda: seal_once(rt.pools.write, rt.retention_days),
                    startup_delay=STARTUP_DELAY, interval=interval, log=log,
                    what="stats day rollup")  # fmt: skip
