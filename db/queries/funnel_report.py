"""SQL of funnel reports: one statement per report (metrics.md, Funnels).

The rules (also in the GraphQL descriptions and ``resolvers/funnel_report.py``):

* A *subject* is a visitor (``visitor_id``) or, when counted by session, a session.
* An *attempt* starts at each step-1 event of the subject with ``start <= ts < end``.
  Events of steps 2..n may lie after ``end`` but at most ``window`` after the step-1
  event (``t_k - t_1 <= window``, inclusive). ``session_start``/``session_end`` events
  are ignored.
* ORDERED: steps 1..k matched by events in strictly increasing time order; other
  events may happen in between.
* STRICT: as ORDERED, and between two consecutive matched steps (times ``t_i`` and
  ``t_(i+1)``) the subject has no other page view with ``t_i < ts <= t_(i+1)``.
* ANY: step 1 starts the attempt; each of steps 2..k has a matching event strictly
  after it and within the window, in any order (one event may satisfy several steps).
* An attempt's depth is the furthest step it reaches; a subject's is the maximum over
  its attempts. Time to convert = per converted subject, the minimum over its
  attempts of (time of the last step − time of step 1) in seconds; for ANY the last
  step is the latest of the earliest matches of steps 2..n.

The SQL that finds every attempt is built in ``db/queries/funnel_sql.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import translated
from db.queries.funnel_counts_sql import ALONE, base_args, counts_sql, histogram_edges
from db.queries.funnel_rollup import bounds as rollup_bounds
from db.queries.funnel_sql import AttemptsSql, FunnelSpec
from db.queries.stats_events_side import LONG_SESSION
from db.tracing import tag


@dataclass(frozen=True)
class ReportCounts:
    """``reached[k]`` subjects reached step k+1; durations in seconds (None: nobody)."""

    reached: list[int]
    mean: float | None
    median: float | None
    histogram: list[tuple[float, int]]


#: Reports are one large statement whose planner estimates are poor: JIT compilation
#: alone can cost more than the query (seconds), and sorts spill with a small work_mem.
#: No parallel workers: compareFunnels runs one statement per funnel at once, and on
#: two cores workers only added start-up and coordination (bench.funnels: one funnel
#: 308 → 271 ms, five 989 → 854 ms).
_SESSION = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0"
#: The breakdown joins ~150k best attempts to ~350k sessions; its row estimates are far
#: off (best is a filter over stored attempts), and the planner chose a merge join that
#: sorted the sessions by id in the database collation (0.5 s); hashing takes half that.
_HASH_JOIN = "; SET LOCAL enable_mergejoin = off"


async def _fetch(
    pool: asyncpg.Pool, q: AttemptsSql, sql: str, start: datetime, end: datetime,
    settings: str = "",
) -> list[asyncpg.Record]:
    """Run one report statement in a read-only transaction with the settings above. With
    the rollup (``q.lb`` set), its bound is read first in the same snapshot (repeatable
    read), so stored attempts and events agree."""
    spec = q.spec
    args = [*base_args(spec, start, end), *q.args]
    isolation = "repeatable_read" if q.lb else "read_committed"
    async with translated(), pool.acquire() as conn, conn.transaction(
        isolation=isolation, readonly=True
    ):
        await conn.execute(_SESSION + settings)
        if q.lb:
            q.fill(args, *await rollup_bounds(conn, spec, start, end))
        rows: list[asyncpg.Record] = await conn.fetch(tag(sql), *args)
    return rows


async def counts(
    pool: asyncpg.Pool, spec: FunnelSpec, start: datetime, end: datetime, rollup: bool = False
) -> ReportCounts:
    """Per-step reached counts and time-to-convert stats over ``[start, end)``."""
    q = AttemptsSql(spec)
    n = len(spec.steps)
    edges = histogram_edges(spec.window.total_seconds())
    sql = counts_sql(q, rollup)
    [row] = await _fetch(pool, q, sql, start, end)
    got: list[int] = list(row["reached"])
    if row["firsts"] is not None:
        cut = row["cut"] or [0] * n
        parts = zip(got, row["firsts"], row["mixed"], cut, strict=True)
        got = [a + b - c - d for a, b, c, d in parts]
    cumulative: list[int] = list(row["cum"])
    hist = [(edge, cumulative[i] - (cumulative[i - 1] if i else 0)) for i, edge in enumerate(edges)]
    return ReportCounts(got, row["mean"], row["median"], hist)


def _best(q: AttemptsSql, rollup: bool) -> str:
    """CTEs ending in ``best``: each subject's deepest attempt (ties: earliest step 1, then
    the smallest session id among that instant's step-1 events).

    From the rollup without sorting every stored attempt by subject: a stored attempt is
    its subject's best when it is the first in the range to reach its own depth
    (``p<depth>`` before ``$2`` or none) and no deeper attempt follows it in the range
    (``nx``, migration 010; an ``nx`` at or after ``lb``, or a touched subject's at or
    after ``touched_from``, names an attempt that is computed from events instead — a
    subject with one is in ``ls``). Subjects with attempts computed from events (``ls``)
    are sorted as before, with their stored attempts."""
    order = "ORDER BY subj, depth DESC, t1, sid"
    if not rollup:
        return f"""{q.attempts()},
best AS (SELECT DISTINCT ON (subj) subj, sid, t1, depth FROM att {order})"""
    own = " ".join(f"WHEN {k} THEN p{k}" for k in range(1, len(q.spec.steps) + 1))
    return f"""{q.rollup_parts()},
best AS (
  (SELECT DISTINCT ON (subj) subj, sid, t1, depth FROM (
     SELECT subj, sid, t1, depth FROM att_live
     UNION ALL
     SELECT st.subj, st.sid, st.t1, st.depth FROM st WHERE st.subj IN (SELECT subj FROM ls)) m
   {order})
  UNION ALL
  SELECT subj, sid, t1, depth FROM st
  WHERE coalesce((CASE depth {own} END) < $2::timestamptz, true)
    AND (nx IS NULL OR nx >= {q.start}
         OR (nx >= {q.touched_from}::timestamptz AND subj = ANY({q.touched}::text[])))
    AND {ALONE})"""


async def daily(
    pool: asyncpg.Pool,
    spec: FunnelSpec,
    start: datetime,
    end: datetime,
    tz: str,
    rollup: bool = False,
) -> list[tuple[Any, int, int]]:
    """(local date of the best attempt's step-1 event, entered, converted), by date."""
    q = AttemptsSql(spec)
    tz_param = q.param(tz)
    sql = f"""{_best(q, rollup)}
SELECT (t1 AT TIME ZONE {tz_param})::date AS day, count(*)::int AS entered,
       count(*) FILTER (WHERE depth = {len(spec.steps)})::int AS converted
FROM best GROUP BY 1 ORDER BY 1"""
    rows = await _fetch(pool, q, sql, start, end)
    return [(r["day"], r["entered"], r["converted"]) for r in rows]


async def breakdown(
    pool: asyncpg.Pool,
    spec: FunnelSpec,
    start: datetime,
    end: datetime,
    value_sql: str,
    limit: int,
    offset: int,
    rollup: bool = False,
) -> tuple[list[tuple[str, int, int]], int]:
    """Rows (value, entered, converted) of subjects by a dimension of the session of
    their best attempt's step-1 event (``value_sql`` over ``sessions s``), entered
    descending then value ascending; plus the total number of rows.

    Those sessions have an event in ``[$2, $3)`` (the step-1 event), so they started
    before ``$3`` and were last seen at or after ``$2``: they are read like the stats
    scan reads them (``LONG_SESSION``: started at most an hour before ``$2``, or longer
    than an hour, from ``sessions_site_long``), not every session of the website."""
    q = AttemptsSql(spec)
    lim, off = q.param(limit), q.param(offset)
    early = f"$2::timestamptz - {LONG_SESSION}"
    sql = f"""{_best(q, rollup)},
ses AS NOT MATERIALIZED (
  SELECT * FROM sessions WHERE website_id = $1 AND started_at >= {early}
    AND started_at < $3::timestamptz AND last_seen >= $2::timestamptz
  UNION ALL
  SELECT * FROM sessions WHERE website_id = $1 AND last_seen >= $2::timestamptz
    AND last_seen - started_at > {LONG_SESSION} AND started_at < {early}),
br AS (
  SELECT {value_sql} AS value, count(*)::int AS entered,
         count(*) FILTER (WHERE b.depth = {len(spec.steps)})::int AS converted
  FROM best b LEFT JOIN ses s ON s.session_id = b.sid
  GROUP BY 1)
SELECT (SELECT count(*) FROM br)::int AS total,
       (SELECT coalesce(json_agg(json_build_array(value, entered, converted)
                 ORDER BY entered DESC, value), '[]'::json)
        FROM (SELECT * FROM br ORDER BY entered DESC, value LIMIT {lim} OFFSET {off}) p) AS page"""
    [row] = await _fetch(pool, q, sql, start, end, _HASH_JOIN)
    return [(str(v), int(e), int(c)) for v, e, c in row["page"]], int(row["total"])
