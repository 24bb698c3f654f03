"""Keeping every funnel's attempt rollup current (``db/queries/funnel_rollup.py``).

Each funnel's stored interval of step-1 times runs from ``RETENTION_DAYS`` ago (no
report may start earlier) to ``now - SETTLE``, and its watermark is ``now - SETTLE`` as
of the pass. Attempts whose window is still open are stored too: events that arrive
later with ``ts`` at or after the watermark make their subjects *touched* (reports
compute those subjects' newer attempts, and the next pass stores them again); events
older than the watermark (imports into the past, events more than ``SETTLE`` late) and
deletions lower the interval's end through the events trigger (migrations 009, 011) and
are sealed again on a later pass.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from db.queries.funnel_rollup import seal_step, state
from db.queries.funnels import list_all
from db.queries.table_stats import analyze, analyze_if_stale
from resolvers.counters import FUNNEL_ROLLUP_LAG, FUNNEL_ROLLUP_STEPS
from resolvers.funnel_report import spec_of
from resolvers.pass_loop import pass_loop
from resolvers.runtime import Runtime

log = logging.getLogger("footfall.funnel_rollup")

#: How far behind now the stored interval and the watermark stay (events up to this late
#: only touch their subjects; later ones unseal).
SETTLE = timedelta(minutes=10)
#: Seconds between passes when everything is sealed.
INTERVAL = 60.0
#: Seconds from the start of a process to its first pass.
STARTUP_DELAY = 10.0
#: Seconds one pass may spend before it yields to the next (the loop goes on at once).
PASS_BUDGET = 20.0
#: Steps per funnel per pass (a reset, then chunks).
MAX_STEPS = 1000
#: Chunks of one funnel sealed in one pass after which the table is analysed: a funnel
#: built after the table's last ANALYZE is missing from its statistics (estimated at a
#: row or so), which the reports' plans depend on (the sealer's own do not).
BUILD_CHUNKS = 3


async def seal_all(
    pool: asyncpg.Pool,
    retention_days: int,
    now: datetime | None = None,
    budget: float = PASS_BUDGET,
) -> bool:
    """One pass over every funnel; ``True`` when work is left (``budget`` seconds spent,
    or writers changed a chunk while it was computed). After it, the stored attempts'
    statistics are refreshed (``_refresh_statistics``)."""
    now = now or datetime.now(UTC)
    wanted_start, target = now - timedelta(days=retention_days), now - SETTLE
    deadline = time.monotonic() + budget
    more = False
    lag = 0.0
    sealed = built = 0  # chunks stored; funnels whose build of BUILD_CHUNKS+ chunks ended
    try:
        for row in await list_all(pool):
            spec = spec_of(row)
            result = "busy"
            chunks = 0
            for _ in range(MAX_STEPS):
                if time.monotonic() > deadline:
                    return True
                try:
                    result = await seal_step(pool, spec, wanted_start, target)
                except Exception:  # one funnel's failure must not stop the others
                    log.exception("funnel rollup of %s failed", spec.funnel_id)
                    result = "busy"
                if result in ("sealed", "conflict", "reset"):
                    FUNNEL_ROLLUP_STEPS.labels(result).inc()
                if result == "sealed":
                    chunks += 1
                if result in ("done", "busy", "conflict"):
                    break
            sealed += chunks
            if result == "done" and chunks >= BUILD_CHUNKS:
                built += 1
            more = more or result == "conflict"
            if result != "done" and (st := await state(pool, spec.funnel_id)) is not None:
                lag = max(lag, (target - st.sealed_until).total_seconds())
        FUNNEL_ROLLUP_LAG.set(lag)
        return more
    finally:
        await _refresh_statistics(pool, sealed, built)


async def _refresh_statistics(pool: asyncpg.Pool, sealed: int, built: int) -> None:
    """Reports plan from the statistics of ``funnel_attempts`` and its quarter-hour
    counts (autovacuum may be off or behind): analysed after a pass that built a
    funnel, else when enough changed."""
    for table in ("funnel_attempts", "funnel_attempt_counts"):
        try:
            if built:
                await analyze(pool, table)
            elif sealed:
                await analyze_if_stale(pool, table)
        except Exception:  # statistics are an optimisation: never fail the pass for them
            log.exception("analysing %s failed", table)


async def funnel_rollup_loop(rt: Runtime, interval: float = INTERVAL) -> None:
    """Seal forever (``pass_loop``), the first pass ``STARTUP_DELAY`` seconds after start."""
    await pass_loop(lambda: seal_all(rt.pools.write, rt.retention_days),
                    startup_delay=STARTUP_DELAY, interval=interval, log=log,
                    what="funnel rollup")  # fmt: skip
