"""SQL of a funnel report's counts statement (``db/queries/funnel_report.py``,
``counts``): reached per step and time to convert, from events or from the stored
attempts (migrations 010 and 013), plus a made-up report for warming up connections.
The rules are in ``funnel_report``'s docstring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from db.queries.funnel_sql import AttemptsSql, FunnelSpec, StepMatch

#: Upper bounds (seconds) of the time-to-convert histogram; the window closes the list.
HISTOGRAM_EDGES = (
    10, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200,
    86400, 259200, 604800, 1209600, 2592000,
)  # fmt: skip


def histogram_edges(window_seconds: float) -> list[float]:
    return [float(e) for e in HISTOGRAM_EDGES if e < window_seconds] + [float(window_seconds)]


def base_args(spec: FunnelSpec, start: datetime, end: datetime) -> list[Any]:
    return [spec.website_id, start, end, spec.window]


def counts_sql(q: AttemptsSql, rollup: bool) -> str:
    """The statement of ``counts`` (see ``_counts_with_rollup`` for ``rollup``)."""
    n = len(q.spec.steps)
    edges = histogram_edges(q.spec.window.total_seconds())
    reached = ", ".join(
        ["count(*)"] + [f"count(*) FILTER (WHERE depth >= {k})" for k in range(2, n + 1)]
    )
    cum = ", ".join(f"count(dur) FILTER (WHERE dur <= {e!r})" for e in edges)
    stats = f"""avg(dur)::float8 AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dur) AS median, ARRAY[{cum}]::int[] AS cum"""
    if rollup:
        return _counts_with_rollup(q, reached, stats)
    return f"""{q.attempts()},
per AS (SELECT subj, max(depth) AS depth, min(dur) AS dur FROM att GROUP BY subj)
SELECT ARRAY[{reached}]::int[] AS reached, NULL::int[] AS firsts, NULL::int[] AS mixed,
       NULL::int[] AS cut, {stats}
FROM per"""


def warm_up() -> tuple[str, list[Any]]:
    """A report statement of a made-up funnel with every kind of step, and arguments:
    new connections plan it (``db/pool.py``), so that a process's first reports find
    that backend's catalog caches warm (a comparison plans one per connection)."""
    steps = (StepMatch("PAGE", "/%"), StepMatch("CUSTOM", "x", {"k": "v"}), StepMatch("EVENT", "x"))
    spec = FunnelSpec(str(UUID(int=0)), "", steps, timedelta(days=1), "VISITOR", "ORDERED")
    q = AttemptsSql(spec)
    sql = counts_sql(q, rollup=True)
    at = datetime(2000, 1, 1, tzinfo=UTC)
    args = [*base_args(spec, at, at), *q.args]
    q.fill(args, at, at, [])
    return sql, args


#: A stored attempt of a subject with no attempt computed from events (not in ``ls``).
ALONE = "NOT EXISTS (SELECT 1 FROM ls WHERE ls.subj = st.subj)"
#: ``date_bin`` of a time to the start of its ``funnel_attempt_counts`` bucket (migration
#: 013: 15 minutes from 2000-01-01 UTC).
_BUCKET_OF = "date_bin('15 minutes', {}, '2000-01-01 00:00+00')"


def _first_counts(n: int) -> str:
    """Per step k, the stored attempts (of a FROM) that are the first to reach k in the
    range: ``depth >= k`` and ``p<k>`` before ``$2`` or none."""
    return ", ".join(
        f"count(*) FILTER (WHERE depth >= {k} AND (p{k} IS NULL OR p{k} < $2::timestamptz))"
        for k in range(1, n + 1)
    )


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
    firsts = _first_counts(n)
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
    return f"""{parts},
{fast},
mix AS (
  SELECT subj, max(depth) AS depth, min(dur) AS dur FROM (
    SELECT subj, depth, dur FROM att_live
    UNION ALL
    SELECT st.subj, st.depth, st.dur FROM st WHERE st.subj IN (SELECT subj FROM ls)) m
  GROUP BY subj),
conv AS (
  SELECT min(dur) AS dur FROM st WHERE dur IS NOT NULL AND {ALONE} GROUP BY subj
  UNION ALL
  SELECT dur FROM mix WHERE dur IS NOT NULL)
SELECT (SELECT ARRAY[{reached}]::int[] FROM mix) AS reached,
       {firsts} AS firsts,
       (SELECT ARRAY[{_first_counts(n)}]::int[] FROM st WHERE st.subj IN (SELECT subj FROM ls)) AS mixed,
       {cut} AS cut,
       {stats}
FROM conv"""
