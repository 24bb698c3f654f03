"""The day rollup's statements (migration 014): one plan read from stored days plus the
events around them, and one day computed for storing.

A *piece* is a website and a half-open UTC range whose events and sessions are read
directly. ``groups_sql`` turns the pieces ``g`` into rows per (scope, set code, key,
bucket): the visitor numbers seen (``nums``; ``visitor_numbers``), the visitor ids that
have no number yet (``ids``), page views and custom events by event time, and visits,
bounces, summed duration (microseconds, so that sums are exact) and their page views (``spv``) of the sessions
started in the piece. Set codes are those of ``db/queries/stats.py`` (0 summary, then
intervals, then dimensions); ``NULL`` keys are dropped (an event dimension that does not
apply, an event without a session row for session dimensions), as the scan does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from db.errors import translated
from db.queries.dimensions import (
    EVENT_DIMENSIONS,
    NOT_IGNORED,
    SESSION_DIMENSIONS,
    Params,
    event_value_sql,
    grouped,
    session_value_sql,
)
from db.queries.stats import ScanPlan, bucket_sql, scope_values
from db.tracing import tag

#: The dimensions a stored day holds (PROPERTY is answered by the scan).
DAY_DIMENSIONS = tuple(sorted(SESSION_DIMENSIONS)) + ("EVENT", "PAGE")
#: The summed columns of the grouped rows, in storing order.
SUMS = ("pv", "ce", "visits", "bounces", "duration", "spv")
#: Intervals whose buckets are unions of whole local days.
DAY_INTERVALS = frozenset({"DAY", "WEEK", "MONTH"})

_SETS = (
    "array_agg(n) FILTER (WHERE n IS NOT NULL) AS nums,"
    " array_agg(visitor_id) FILTER (WHERE n IS NULL) AS ids,"
    " sum(pv)::bigint AS pv, sum(ce)::bigint AS ce"
)
_VISITS = (
    "count(*) AS visits, count(*) FILTER (WHERE bounce) AS bounces,"
    " sum(duration)::bigint AS duration, sum(spv) AS spv"
)
_NO_SETS = "NULL::int[], NULL::text[], 0::bigint, 0::bigint"
_NO_VISITS = "0::bigint, 0::bigint, 0::bigint, 0::bigint"
_COUNTS = (
    "count(*) FILTER (WHERE e.event_type = 'pageview') AS pv,"
    " count(*) FILTER (WHERE e.event_type <> 'pageview') AS ce"
)


@dataclass(frozen=True)
class Sets:
    """The codes of one statement: ``buckets`` [(code, interval)], ``dims`` [(code,
    dimension)]; ``zone`` is the buckets' zone parameter (``$n``)."""

    buckets: list[tuple[int, str]]
    dims: list[tuple[int, str]]
    zone: str


#: A bucket "interval" of the sealing statement only: hours from the piece's start
#: (``date_bin``), so that a stored day's hours partition it whatever its offsets.
PIECE_HOURS = "PIECE_HOURS"


def _bucket(column: str, interval: str, zone: str) -> str:
    if interval == PIECE_HOURS:
        return f"date_bin('1 hour', {column}, g.lo)"
    return bucket_sql(column, interval, zone)


def groups_sql(sets: Sets) -> str:
    """CTEs ``la``, ``ld``, ``vn``, ``las``, ``lv`` and ``lg`` (the grouped rows) over
    pieces ``g(scope, website_id, lo, hi, want_main, want_events)``. The pieces' events
    are first summed by hashing (visitor ids compared bytewise, as ``visitor_numbers``
    stores them) — per (session, visitor, buckets) in ``la``, per
    (visitor, value) of each event dimension in ``ld`` — so that sessions (for their
    dimension values) and visitor numbers (``vn``, once per visitor) are looked up per
    row of those, not per event; the sets' arrays may repeat a number or an id (the
    caller unites them)."""
    sdims = [(c, d) for c, d in sets.dims if d in SESSION_DIMENSIONS]
    edims = [(c, d) for c, d in sets.dims if d in EVENT_DIMENSIONS]
    b_names = [f"b{c}" for c, _ in sets.buckets]
    la_cols = "".join(f", {_bucket('e.ts', i, sets.zone)} AS b{c}" for c, i in sets.buckets)
    la_group = ", ".join(str(i) for i in range(1, 5 + len(b_names)))
    sv_cols = "".join(
        f", {_bucket('s.started_at', i, sets.zone)} AS b{c}" for c, i in sets.buckets
    )
    sv_cols += "".join(f", {grouped(session_value_sql(d, 's'))} AS s{c}" for c, d in sdims)
    las_cols = "".join(f", {grouped(session_value_sql(d, 's'))} AS s{c}" for c, d in sdims)
    join = (
        "LEFT JOIN sessions s ON s.website_id = la.website_id AND s.session_id = la.session_id"
        if sdims else ""
    )  # fmt: skip
    has_session = "s.session_id IS NOT NULL" if sdims else "false"
    sql = f"""
la AS MATERIALIZED (
    SELECT g.scope, e.website_id, e.session_id, e.visitor_id COLLATE "C" AS visitor_id{la_cols},
        {_COUNTS}
    FROM g JOIN events e ON g.want_main AND e.website_id = g.website_id
        AND e.ts >= g.lo AND e.ts < g.hi
    WHERE {NOT_IGNORED}
    GROUP BY {la_group}
),"""
    visitors = "SELECT DISTINCT scope, website_id, visitor_id FROM la"
    if edims:
        d_exprs = [(c, grouped(event_value_sql(d, None, "e"))) for c, d in edims]
        d_sel = "".join(f", {x} AS d{c}" for c, x in d_exprs)
        d_sets = ", ".join(f"(scope, website_id, visitor_id, d{c})" for c, _ in d_exprs)
        whens = " ".join(f"WHEN GROUPING(d{c}) = 0 THEN {c}" for c, _ in d_exprs)
        key = f"COALESCE({', '.join(f'd{c}' for c, _ in d_exprs)})"
        sql += f"""
ld AS MATERIALIZED (
    SELECT scope, website_id, visitor_id, CASE {whens} END AS code, {key} AS key,
        count(*) FILTER (WHERE pv) AS pv, count(*) FILTER (WHERE NOT pv) AS ce
    FROM (
        SELECT g.scope, e.website_id, e.visitor_id COLLATE "C" AS visitor_id,
            e.event_type = 'pageview' AS pv{d_sel}
        FROM g JOIN events e ON g.want_events AND e.website_id = g.website_id
            AND e.ts >= g.lo AND e.ts < g.hi
        WHERE {NOT_IGNORED}
    ) x
    GROUP BY GROUPING SETS ({d_sets})
),"""
        visitors += " UNION SELECT scope, website_id, visitor_id FROM ld"
    sql += f"""
vn AS MATERIALIZED (
    -- one index probe per visitor (a scalar subquery: never a scan of every number)
    SELECT v.scope, v.visitor_id, (SELECT n.n FROM visitor_numbers n
        WHERE n.website_id = v.website_id AND n.visitor_id = v.visitor_id) AS n
    FROM ({visitors}) v
), las AS MATERIALIZED (
    SELECT la.*, vn.n, {has_session} AS has_session{las_cols}
    FROM la JOIN vn ON vn.scope = la.scope AND vn.visitor_id = la.visitor_id
    {join}
), lv AS MATERIALIZED (
    SELECT g.scope, s.pageviews = 1 AND s.events = 0 AS bounce,
        (extract(epoch FROM s.last_seen - s.started_at) * 1000000)::bigint AS duration,
        s.pageviews AS spv{sv_cols}
    FROM g JOIN sessions s ON g.want_main AND s.website_id = g.website_id
        AND s.started_at >= g.lo AND s.started_at < g.hi
),"""
    parts = [f"SELECT scope, 0, NULL::text, NULL::timestamptz, {_SETS}, {_NO_VISITS}"
             " FROM las GROUP BY scope"]
    parts += [f"SELECT scope, {c}, NULL, b{c}, {_SETS}, {_NO_VISITS}"
              f" FROM las GROUP BY scope, b{c}" for c, _ in sets.buckets]
    parts += [f"SELECT scope, {c}, s{c}, NULL, {_SETS}, {_NO_VISITS}"
              f" FROM las WHERE has_session GROUP BY scope, s{c}" for c, _ in sdims]
    if edims:
        parts += [f"SELECT ld.scope, ld.code, ld.key, NULL, {_SETS.replace('visitor_id', 'ld.visitor_id')},"
                  f" {_NO_VISITS} FROM ld JOIN vn ON vn.scope = ld.scope"
                  " AND vn.visitor_id = ld.visitor_id WHERE ld.key IS NOT NULL"
                  " GROUP BY ld.scope, ld.code, ld.key"]
    parts += [f"SELECT scope, 0, NULL, NULL, {_NO_SETS}, {_VISITS} FROM lv GROUP BY scope"]
    parts += [f"SELECT scope, {c}, NULL, b{c}, {_NO_SETS}, {_VISITS}"
              f" FROM lv GROUP BY scope, b{c}" for c, _ in sets.buckets]
    parts += [f"SELECT scope, {c}, s{c}, NULL, {_NO_SETS}, {_VISITS}"
              f" FROM lv GROUP BY scope, s{c}" for c, _ in sdims]
    union = "\n    UNION ALL ".join(parts)
    return sql + f"""
lg (scope, code, key, bucket, nums, ids, pv, ce, visits, bounces, duration, spv) AS (
    {union}
)"""


def read_sql(plan: ScanPlan) -> tuple[str, list[Any]]:
    """One statement for ``plan`` (no filters, dimensions in ``DAY_DIMENSIONS``,
    intervals in ``DAY_INTERVALS``): rows ``src = 'd'`` are the stored values of the
    usable days inside each scope, summed per (``dim``, ``key``) — per day for the
    summary (``dim = ''``, with ``buckets``: the day's bucket per interval) — with
    their visitor sets (``bitmaps``), ``src = 'l'`` the grouped rows of the pieces of each scope
    between them, ``src = 'z'`` one per scope with the website's stored zone (``dim``),
    its number of usable days (``code``) and of usable hours (``key``). Days are usable
    when stored, not dirty and, for a plan with intervals, stored in the plan's zone; a
    scope that needs only the summary (and buckets) also reads the hours of the usable
    days it covers in part (summed per day, as ``dim = ''``)."""
    p = Params()
    scopes = scope_values(plan, p)
    zone = p.add(plan.zone, "::text") if plan.intervals else "NULL::text"
    sets = Sets(
        buckets=list(enumerate(plan.intervals, start=1)),
        dims=[(c, d.dimension) for c, d in enumerate(plan.dimensions, plan.first_dimension_code)],
        zone=zone,
    )
    zone_ok = f"z.site_zone = {zone}" if plan.intervals else "true"
    dims = p.add(["", *(d.dimension for d in plan.dimensions)], "::text[]")
    events = "', '".join(sorted(EVENT_DIMENSIONS))
    # (a group of the summary is one day: its buckets; other groups have none)
    day_buckets = ", ".join(bucket_sql("min(d.lo)", i, zone) for i in plan.intervals)
    hour_buckets = ", ".join(bucket_sql("min(h.lo)", i, zone) for i in plan.intervals)
    # a scope may read a stored day's hours when it needs the summary (and buckets) only
    session_sets = any(d.dimension not in EVENT_DIMENSIONS for d in plan.dimensions)
    event_sets = any(d.dimension in EVENT_DIMENSIONS for d in plan.dimensions)
    summary_only = (
        f"(NOT z.want_main OR {not session_sets}) AND (NOT z.want_events OR {not event_sets})"
    )
    sql = f"""
WITH q AS NOT MATERIALIZED (
    SELECT * FROM (VALUES {scopes}) AS q(website_id, lo, hi, scope, want_main, want_events)
), z AS MATERIALIZED (
    SELECT q.*, w.zone AS site_zone
    FROM q LEFT JOIN stats_day_sites w ON w.website_id = q.website_id
), u AS MATERIALIZED (
    -- the usable days overlapping each scope
    SELECT z.scope, z.website_id, z.want_main, z.want_events, z.lo AS slo,
        t.lo >= z.lo AND t.hi <= z.hi AS inside, t.day, t.lo, t.hi
    FROM z JOIN stats_days t ON t.website_id = z.website_id AND t.lo < z.hi AND t.hi > z.lo
    WHERE {zone_ok} AND NOT EXISTS (
        SELECT 1 FROM stats_day_dirty x WHERE x.website_id = t.website_id AND x.day = t.day)
), d AS MATERIALIZED (
    SELECT scope, website_id, want_main, want_events, slo, day, lo, hi FROM u WHERE inside
), h AS MATERIALIZED (
    SELECT u.scope, u.website_id, u.want_main, u.want_events, u.slo, h.day, h.lo, h.hi,
        h.visitors, h.pageviews, h.events, h.visits, h.bounces, h.duration, h.spv
    FROM u JOIN z ON z.scope = u.scope
    JOIN stats_day_hours h ON h.website_id = u.website_id AND h.day = u.day
        AND h.lo >= z.lo AND h.hi <= z.hi
    WHERE NOT u.inside AND {summary_only}
), g AS MATERIALIZED (
    SELECT scope, website_id, want_main, want_events, glo AS lo, ghi AS hi FROM (
        SELECT scope, website_id, want_main, want_events,
            coalesce(lag(hi) OVER (PARTITION BY scope ORDER BY lo), slo) AS glo, lo AS ghi
        FROM (SELECT scope, website_id, want_main, want_events, slo, lo, hi FROM d
              UNION ALL
              SELECT scope, website_id, want_main, want_events, slo, lo, hi FROM h
              UNION ALL
              SELECT scope, website_id, want_main, want_events, lo, hi, hi FROM z) u
    ) x
    WHERE glo < ghi
), {groups_sql(sets).lstrip()}
SELECT 'l' AS src, scope, code, NULL::text AS dim, key, bucket,
    NULL::timestamptz[] AS buckets, NULL::bytea[] AS bitmaps, nums, ids, pv, ce, visits, bounces,
    duration, spv
FROM lg WHERE code = 0 OR code < {plan.first_dimension_code} OR key IS NOT NULL
UNION ALL
SELECT 'd', d.scope, NULL, v.dim, v.key, NULL, ARRAY[{day_buckets}]::timestamptz[],
    array_agg(v.visitors), NULL, NULL, sum(v.pageviews)::bigint, sum(v.events)::bigint,
    sum(v.visits)::bigint, sum(v.bounces)::bigint, sum(v.duration)::bigint, sum(v.spv)::bigint
FROM d JOIN stats_day_values v ON v.website_id = d.website_id AND v.day = d.day
WHERE v.dim = ANY({dims})
    AND CASE WHEN v.dim IN ('{events}') THEN d.want_events ELSE d.want_main END
GROUP BY d.scope, v.dim, v.key, CASE WHEN v.dim = '' THEN d.day END
UNION ALL
SELECT 'd', h.scope, NULL, '', '', NULL, ARRAY[{hour_buckets}]::timestamptz[],
    array_agg(h.visitors), NULL, NULL, sum(h.pageviews)::bigint, sum(h.events)::bigint,
    sum(h.visits)::bigint, sum(h.bounces)::bigint, sum(h.duration)::bigint, sum(h.spv)::bigint
FROM h GROUP BY h.scope, h.day
UNION ALL
SELECT 'z', z.scope, (SELECT count(*) FROM d WHERE d.scope = z.scope)::int, z.site_zone,
    (SELECT count(*) FROM h WHERE h.scope = z.scope)::text,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM z
"""
    return sql, p.values


async def read(pool: asyncpg.Pool, plan: ScanPlan) -> list[asyncpg.Record]:
    """The rows of ``read_sql(plan)`` (one statement)."""
    sql, args = read_sql(plan)
    async with translated():
        rows: list[asyncpg.Record] = await pool.fetch(tag(sql), *args)
    return rows


# --------------------------------------------------------------------------- sealing


#: Codes of the sealing statement: 0 the day, 1.. ``DAY_DIMENSIONS``, then its hours.
HOURS_CODE = len(DAY_DIMENSIONS) + 1
SEAL_SETS = Sets(buckets=[(HOURS_CODE, PIECE_HOURS)],
                 dims=list(enumerate(DAY_DIMENSIONS, start=1)), zone="NULL::text")  # fmt: skip

_NUMBER_SQL = """
WITH v AS (
    SELECT DISTINCT e.visitor_id FROM events e
    WHERE e.website_id = $1 AND e.ts >= $2 AND e.ts < $3 AND {ignored}
), old AS (
    UPDATE visitor_numbers n SET last_day = $4
    FROM v WHERE n.website_id = $1 AND n.visitor_id = v.visitor_id COLLATE "C" AND n.last_day < $4
), new AS (
    SELECT v.visitor_id, row_number() OVER (ORDER BY v.visitor_id COLLATE "C") - 1 AS i
    FROM v WHERE NOT EXISTS (
        SELECT 1 FROM visitor_numbers n
        WHERE n.website_id = $1 AND n.visitor_id = v.visitor_id COLLATE "C")
), up AS (
    UPDATE stats_day_sites SET next_number = next_number + (SELECT count(*) FROM new)
    WHERE website_id = $1
    RETURNING next_number - (SELECT count(*) FROM new)::int AS base
)
INSERT INTO visitor_numbers (website_id, visitor_id, n, last_day)
SELECT $1, new.visitor_id, up.base + new.i, $4 FROM new, up
""".replace("{ignored}", NOT_IGNORED)

_SEAL_SQL = f"""
WITH g AS (
    SELECT 1 AS scope, $1::text AS website_id, $2::timestamptz AS lo, $3::timestamptz AS hi,
        true AS want_main, true AS want_events
), {groups_sql(SEAL_SETS).lstrip()}
SELECT code, key, bucket, nums, ids, pv, ce, visits, bounces, duration, spv FROM lg
WHERE code IN (0, {HOURS_CODE}) OR key IS NOT NULL
"""


async def compute_day(
    conn: asyncpg.Connection, website_id: str, day: date, lo: datetime, hi: datetime
) -> list[asyncpg.Record]:
    """Number the day's new visitors, then its grouped rows (code 0: summary; code k:
    ``DAY_DIMENSIONS[k - 1]``; ``HOURS_CODE``: the summary per hour from ``lo``, by
    ``bucket``). Run inside the caller's REPEATABLE READ transaction."""
    await conn.execute(_NUMBER_SQL, website_id, lo, hi, day)
    rows: list[asyncpg.Record] = await conn.fetch(tag(_SEAL_SQL), website_id, lo, hi)
    return rows
