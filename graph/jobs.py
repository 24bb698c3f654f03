"""Scheduled maintenance: planner statistics and retention.

Runs at ``AGGREGATION_TIME`` (UTC) and then every ``AGGREGATION_INTERVAL``: the run
times are ``AGGREGATION_TIME`` on 1970-01-01 plus whole intervals, so every process
agrees on them and, for intervals that divide a day (the default 24 h), they include
``AGGREGATION_TIME`` every day. On TimescaleDB the retention policy deletes old chunks
and this job only logs that it skips; on plain PostgreSQL it deletes events older than
``RETENTION_DAYS`` (one process at a time, by advisory lock). Rollups need no scheduled
refresh here: the sessions table is kept by the writer, and the funnel attempt rollup
by its own loop (``resolvers/funnel_rollup.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, time, timedelta

from db.queries.retention import delete_older_than_once
from db.queries.table_stats import analyze_if_stale
from resolvers.runtime import Runtime

log = logging.getLogger("footfall.jobs")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def next_run(now: datetime, at: time, interval: float) -> datetime:
    """The first run time strictly after ``now`` (aware, UTC); ``interval`` in seconds."""
    anchor = EPOCH + timedelta(hours=at.hour, minutes=at.minute)
    k = math.floor((now - anchor).total_seconds() / interval) + 1
    return anchor + timedelta(seconds=k * interval)


async def run_maintenance(rt: Runtime) -> int | None:
    """One maintenance run: ``events`` and ``sessions`` analysed when stale
    (``db.queries.table_stats``), then retention; events deleted, or ``None`` when
    skipped (TimescaleDB's policy does it, or another process is running it)."""
    for table in ("events", "sessions"):  # in case autovacuum is off or behind
        if await analyze_if_stale(rt.pools.write, table):
            log.info("analysed %s (planner statistics)", table)
    if rt.timescale:
        log.info("retention: skipped, the TimescaleDB retention policy drops old chunks")
        return None
    n = await delete_older_than_once(rt.pools.write, rt.retention_days)
    if n is None:
        log.info("retention: skipped, another process is running it")
    elif n:
        log.info("retention deleted %d events older than %d days", n, rt.retention_days)
    return n


async def maintenance_loop(rt: Runtime, at: time, interval: float) -> None:
    """Sleep until each run time, then run; failures are logged, the loop goes on."""
    last = datetime.now(UTC)
    while True:
        now = datetime.now(UTC)
        due = next_run(max(now, last), at, interval)  # never the same slot twice
        await asyncio.sleep(max(0.0, (due - now).total_seconds()))
        last = due
        try:
            await run_maintenance(rt)
        except Exception:
            log.exception("maintenance run failed")
