"""Planner statistics of the tables the service fills in bulk.

PostgreSQL plans from each table's statistics, which autovacuum refreshes — when it
runs. Where it is off (it is on this project's CI machines) or lags behind a bulk fill
(the funnel rollup's first pass stores millions of attempts in minutes), a table never
analysed is planned as a few pages, and a funnel added since the last ANALYZE as a row
or so: plans built on that (nested loops over what is in fact large) can take minutes
where seconds do. ``analyze_if_stale`` analyses a table once enough of it changed, by
autovacuum's rule at a coarser scale (few ANALYZEs during a fill, each reading a
30k-row sample); ``analyze`` does it at once (after the sealer built a funnel).
"""

from __future__ import annotations

import asyncpg

#: ANALYZE once changed rows exceed BASE + FRACTION × rows at the last ANALYZE
#: (autovacuum's defaults: 50 + 0.1 ×; coarser, as each ANALYZE reads a 30k-row sample).
BASE = 10_000
FRACTION = 0.5

#: Tables this module may analyse (identifiers are interpolated, so a fixed set).
TABLES = frozenset({"events", "sessions", "funnel_attempts", "funnel_attempt_counts",
                    "visitor_numbers", "stats_days", "stats_day_values", "stats_day_hours"})  # fmt: skip


def _ours(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"not a table of ours to analyse: {table}")
    return table


async def analyze_if_stale(pool: asyncpg.Pool | asyncpg.Connection, table: str) -> bool:
    """``ANALYZE table`` when it was never analysed and has rows, or when more than
    ``BASE + FRACTION × reltuples`` rows changed since; ``True`` when it did."""
    row = await pool.fetchrow(
        """SELECT c.reltuples, s.n_mod_since_analyze AS changed
           FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
           WHERE c.oid = $1::regclass""",
        _ours(table),
    )
    if row is None or row["changed"] <= 0:
        return False
    if row["reltuples"] >= 0 and row["changed"] <= BASE + FRACTION * row["reltuples"]:
        return False  # analysed (reltuples -1: never) and not enough changed since
    await analyze(pool, table)
    return True


async def analyze(pool: asyncpg.Pool | asyncpg.Connection, table: str) -> None:
    """``ANALYZE table`` now (one of ``TABLES``)."""
    await pool.execute(f"ANALYZE {_ours(table)}")
