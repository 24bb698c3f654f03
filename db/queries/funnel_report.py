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
from db.queries.funnel_rollup import bounds as rollup_bounds
from db.queries.funnel_sql import AttemptsSql, FunnelSpec
from db.queries.stats_events_side import LONG_SESSION
from db.tracing import tag

#: Upper bounds (seconds) of the time-to-convert histogram; the window closes the list.
HISTOGRAM_EDGES = (
    10, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200,
    86400, 259200, 604800, 1209600, 2592000,
)  # fmt: skip


@dataclass(frozen=True)
class ReportCounts:
    """``reached[k]`` subjects reached step k+1; durations in seconds (None: nobody)."""

    reached: list[int]
    mean: float | None
    median: float | None
    histogram: list[tuple[float, int]]


def histogram_edges(window_seconds: float) -> list[float]:
    return [float(e) for e in HISTOGRAM_EDGES if e < window_seconds] + [float(window_seconds)]


def _base_args(spec: FunnelSpec, start: datetime, end: datetime) -> list[Any]:
    return [spec.website_id, start, end, spec.window]


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
    args = [*_base_args(spec, start, end), *q.args]
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
    reached = ", ".join(
        ["count(*)"] + [f"count(*) FILTER (WHERE depth >= {k})" for k in range(2, n + 1)]
    )
    cum = ", ".join(f"count(dur) FILTER (WHERE dur <= {e!r})" for e in edges)
    stats = f"""avg(dur)::float8 AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dur) AS median, ARRAY[{cum}]::int[] AS cum"""
    if rollup:
        sql = _counts_with_rollup(q, reached, stats)
    else:
        sql = f"""{q.attempts()},
per AS (SELECT subj, max(depth) AS depth, min(dur) AS dur FROM att GROUP BY subj)
SELECT ARRAY[{reached}]::int[] AS reached, NULL::int[] AS firsts, NULL::int[] AS mixed,
       NULL::int[] AS cut, {stats}
FROM per"""
    [row] = await _fetch(pool, q, sql, start, end)
    got: list[int] = list(row["reached"])
    if row["firsts"] is not None:
        cut = row["cut"] or [0] * n
        parts = zip(got, row["firsts"], row["mixed"], cut, strict=True)
        got = [a + b - c - d for a, b, c, d in parts]
    cumulative: list[int] = list(row["cum"])
    hist = [(edge, cumulative[i] - (cumulative[i - 1] if i else 0)) for i, edge in enumerate(edges)]
    return ReportCounts(got, row["mean"], row["median"], hist)


#: A stored attempt of a subject with no attempt computed from events (not in ``ls``).
_ALONE = "NOT EXISTS (SELECT 1 FROM ls WHERE ls.subj = st.subj)"
#: ``date_bin`` of a time to the start of its ``funnel_attempt_counts`` bucket (migration
#: 013: 15 minutes from 2000-01-01 UTC).
_BUCKET_OF = "date_bin('15 minutes', {}, '2000-01-01 00:00+00')"


def _firsts(q: AttemptsSql, n: int) -> tuple[str, str, str]:
    """SQL of ``firsts`` (see ``_counts_with_rollup``) as a CASE over two ways, and of
    ``cut``, what the fast way must take off:

    * fast, when no stored attempt has ``t1 >= lb`` (the range ends where they do; a
      late event shrinks the sealed interval before the next pass deletes what it
      unsealed) and ``$2`` starts a bucket: per step the sum of ``reached - closed``
      over the buckets of ``[$2, lb)`` (migration 013), which counts every stored
      attempt there;
      ``cut`` = the same count over the stored attempts that ``st`` leaves out (touched
      subjects' from ``touched_from``: a suffix of each one's attempts, so their first
      in the range is one of them or none is);
    * otherwise a filtered count over every stored attempt of the range (``st``).

    Returns (fast condition CTE, firsts expression, cut expression)."""
    firsts = ", ".join(
        f"count(*) FILTER (WHERE depth >= {k} AND (p{k} IS NULL OR p{k} < $2::timestamptz))"
        for k in range(1, n + 1)
    )
    fid, lb = f"{q.fid}::uuid", f"{q.lb}::timestamptz"
    fast = f"""fast AS (
  SELECT NOT EXISTS (SELECT 1 FROM funnel_attempts WHERE funnel_id = {fid} AND t1 >= {lb})
     AND {_BUCKET_OF.format("$2::timestamptz")} = $2::timestamptz AS ok)"""
    bucketed = f"""ARRAY(
    SELECT coalesce(b.n, 0)::int FROM generate_series(1, {n}) AS s (k)
    LEFT JOIN (SELECT c.k, sum(c.reached - c.closed) AS n FROM funnel_attempt_counts c
               WHERE c.funnel_id = {fid} AND c.bucket >= $2::timestamptz AND c.bucket < {lb}
               GROUP BY c.k) b ON b.k = s.k
    ORDER BY s.k)"""
    left_out = f"""(SELECT ARRAY[{firsts}]::int[] FROM funnel_attempts
    WHERE funnel_id = {fid} AND t1 >= greatest($2::timestamptz, {q.touched_from}::timestamptz)
      AND t1 < {lb} AND subj = ANY({q.touched}::text[]))"""
    scanned = f"(SELECT ARRAY[{firsts}]::int[] FROM st)"
    on = "(SELECT ok FROM fast)"
    return (
        fast,
        f"CASE WHEN {on} THEN {bucketed} ELSE {scanned} END",
        f"CASE WHEN {on} THEN {left_out} END",
    )


def _counts_with_rollup(q: AttemptsSql, reached: str, stats: str) -> str:
    """``counts`` over the stored attempts without grouping them by subject (the cost of
    a report was a hash table of every subject of the range):

    * ``firsts``: a subject whose attempts are all stored reaches step k once per first
      attempt reaching k in the range — a stored attempt with ``depth >= k`` and
      ``p<k>`` (the previous one reaching k, migration 010) before ``$2`` or none.
      Counted from the quarter-hour counts of migration 013 when the range ends where
      the stored attempts do (``_firsts``: ``cut`` is subtracted), else over every
      stored attempt of the range (one plain aggregate); minus the same count over the
      stored attempts of the subjects in ``mix`` (``mixed``: read by subject, few;
      excluding them from the big count instead cost a hash probe per row);
    * ``mix``: subjects with attempts computed from events (``att_live``: touched and
      recent subjects), grouped with their stored ones;
    * time to convert: per converted subject the shortest of its converted attempts
      (``dur`` is set on those only; the partial index ``funnel_attempts_converted``).
    ``reached`` (mix) + ``firsts`` - ``mixed`` - ``cut`` is the answer."""
    n = len(q.spec.steps)
    parts = q.rollup_parts()
    fast, firsts, cut = _firsts(q, n)
    each_first = ", ".join(
        f"count(*) FILTER (WHERE depth >= {k} AND (p{k} IS NULL OR p{k} < $2::timestamptz))"
        for k in range(1, n + 1)
    )
    return f"""{parts},
{fast},
mix AS (
  SELECT subj, max(depth) AS depth, min(dur) AS dur FROM (
    SELECT subj, depth, dur FROM att_live
    UNION ALL
    SELECT st.subj, st.depth, st.dur FROM st WHERE st.subj IN (SELECT subj FROM ls)) m
  GROUP BY subj),
conv AS (
  SELECT min(dur) AS dur FROM st WHERE dur IS NOT NULL AND {_ALONE} GROUP BY subj
  UNION ALL
  SELECT dur FROM mix WHERE dur IS NOT NULL)
SELECT (SELECT ARRAY[{reached}]::int[] FROM mix) AS reached,
       {firsts} AS firsts,
       (SELECT ARRAY[{each_first}]::int[] FROM st WHERE st.subj IN (SELECT subj FROM ls)) AS mixed,
       {cut} AS cut,
       {stats}
FROM conv"""


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
    AND {_ALONE})"""


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
