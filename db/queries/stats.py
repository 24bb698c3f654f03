"""The stats scan: summary, time series and breakdowns of many scopes in ONE statement.

A *scope* is (website, [lo, hi)). One statement answers, for every scope of a plan,
the summary, the buckets of each requested interval and the rows of each requested
breakdown, under one list of filters:

* events side — events with ``ts`` in the scope (``session_start``/``session_end``
  ignored), filtered, first summed per session (and per visitor and value for event
  dimensions) by hashing, then grouped with ``GROUPING SETS`` into visitors
  (distinct), page views and custom events (see ``_events_side``);
* sessions side — sessions with ``started_at`` in the scope, filtered, grouped the same
  way into visits, bounces, summed duration (seconds) and summed page views;
* both sides are merged per (scope, set, value) and breakdown rows are ranked by
  visitors descending, then value ascending in code-point order (``COLLATE "C"``);
  only rows with visitors > 0 within each set's rank window are returned, with the
  count of such rows (``total``).

Set codes: 0 = summary, 1..k = the plan's intervals, k+1.. = the plan's dimensions.
Calendar buckets (DAY/WEEK/MONTH) come back as the local wall time of the bucket's
start encoded as a UTC instant; HOUR buckets as the real instant of the local hh:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import DatabaseError, translated
from db.queries.dimensions import (
    NOT_IGNORED,
    SESSION_DIMENSIONS,
    FilterSpec,
    Params,
    event_filter_sql,
    event_value_sql,
    session_filter_sql,
    session_value_sql,
)
from db.tracing import tag

CALENDAR_UNITS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}


class InvalidPattern(DatabaseError):
    """PostgreSQL refused a MATCHES regular expression."""


@dataclass(frozen=True)
class ScanScope:
    """A website and a half-open UTC range."""

    website_id: str
    lo: datetime
    hi: datetime


@dataclass(frozen=True)
class DimensionSpec:
    """A breakdown set; rows ranked ``lo < rank <= hi`` are returned."""

    dimension: str
    property: str | None
    lo: int
    hi: int


@dataclass(frozen=True)
class ScanPlan:
    scopes: tuple[ScanScope, ...]
    filters: tuple[FilterSpec, ...]
    zone: str | None
    intervals: tuple[str, ...]
    dimensions: tuple[DimensionSpec, ...]

    @property
    def first_dimension_code(self) -> int:
        return 1 + len(self.intervals)


@dataclass(frozen=True)
class ScanRow:
    """One aggregated group. ``scope`` indexes ``plan.scopes``; metrics of a side that
    has no group for this value are None. ``duration`` is summed seconds."""

    scope: int
    code: int
    key: str | None
    bucket: datetime | None
    visitors: int | None
    pageviews: int | None
    events: int | None
    visits: int | None
    bounces: int | None
    duration: float | None
    session_pageviews: int | None
    total: int | None
    rank: int


def _bucket_sql(column: str, interval: str, zone: str) -> str:
    local = f"({column} AT TIME ZONE {zone})"
    if interval == "HOUR":  # the instant whose local time reads hh:00 (DST-safe)
        return f"({column} - ({local} - date_trunc('hour', {local})))"
    return f"(date_trunc('{CALENDAR_UNITS[interval]}', {local}) AT TIME ZONE 'UTC')"


def _grouped(columns: list[tuple[int, str]]) -> tuple[str, str]:
    """GROUPING SETS clause and set-code expression for ``columns`` [(code, name)]."""
    sets = ", ".join(["(scope)", *(f"(scope, {name})" for _, name in columns)])
    if not columns:
        return f"GROUPING SETS ({sets})", "0"
    whens = " ".join(f"WHEN GROUPING({name}) = 0 THEN {code}" for code, name in columns)
    return f"GROUPING SETS ({sets})", f"CASE {whens} ELSE 0 END"


@dataclass
class _Parts:
    """The columns of one plan, named by set code: buckets ``b<code>``, session
    dimensions ``sd<code>``, event dimensions ``d<code>``."""

    event_buckets: list[tuple[int, str]]  # (code, expression over e.ts)
    session_buckets: list[tuple[int, str]]  # (code, expression over s.started_at)
    session_dims: list[tuple[int, str]]  # (code, Dimension name)
    event_dims: list[tuple[int, str]]  # (code, value over e; NULL where it does not apply)


def _parts(plan: ScanPlan, p: Params, zone: str) -> _Parts:
    parts = _Parts([], [], [], [])
    for i, interval in enumerate(plan.intervals, start=1):
        parts.event_buckets.append((i, _bucket_sql("e.ts", interval, zone)))
        parts.session_buckets.append((i, _bucket_sql("s.started_at", interval, zone)))
    for i, d in enumerate(plan.dimensions, start=plan.first_dimension_code):
        if d.dimension in SESSION_DIMENSIONS:
            parts.session_dims.append((i, d.dimension))
        else:
            prop = p.add(d.property, "::text") if d.dimension == "PROPERTY" else None
            parts.event_dims.append((i, event_value_sql(d.dimension, prop, "e")))
    return parts


def _cols(prefix: str, names: list[str]) -> str:
    return "".join(f", {prefix}{n}" for n in names)


def _events_side(plan: ScanPlan, p: Params, parts: _Parts) -> str:
    """CTEs ``ev`` … ``ea``: per (scope, code, key, bucket) visitors, page views and
    custom events. ``count(DISTINCT visitor_id)`` under GROUPING SETS over the raw
    events, with the session joined per event, sorted every event once per set; here
    the events are first reduced by hashing, and only the reduced rows are grouped:

    1. ``la``: events summed per (session, visitor, buckets) — per (visitor, buckets)
       when no session is needed (~3.3 events per row on the bench data); ``ld``: per
       (visitor, value) of each event dimension (hashed GROUPING SETS; per (session,
       visitor, value) when a session filter applies). Each reads ``ev`` with its own
       index-only scan (migration 004): cheaper than materializing ~1.4M partial rows;
    2. ``las``/``lds``: session dimensions joined once per session rather than once per
       event: hashed against ``ss`` (sessions started in the scope); a session started
       before the scope is looked up by primary key; session filters applied here;
    3. ``ea``: GROUPING SETS over ``las`` with ``count(DISTINCT visitor_id)`` (the rows
       are per session, so a visitor may repeat) and over ``ld`` with ``count(*)`` (one
       row per visitor and value already, unless session filters applied).
    """
    session_filters = [f for f in plan.filters if f.on_session]
    with_session = bool(parts.session_dims) or bool(session_filters)
    buckets = [f"b{c}" for c, _ in parts.event_buckets]
    dims = [f"d{c}" for c, _ in parts.event_dims]
    sdims = [f"sd{c}" for c, _ in parts.session_dims]
    sid = ["website_id", "session_id"]
    a_base = ["scope", *sid, "visitor_id"] if with_session else ["scope", "visitor_id"]
    d_base = ["scope", *sid, "visitor_id"] if session_filters else ["scope", "visitor_id"]
    ev_select = "".join(f", {expr} AS b{c}" for c, expr in parts.event_buckets)
    ev_select += "".join(f", {expr} AS d{c}" for c, expr in parts.event_dims)
    ev_where = [NOT_IGNORED, *(event_filter_sql(f, p) for f in plan.filters if not f.on_session)]
    sums = "count(*) FILTER (WHERE pv) AS pv, count(*) FILTER (WHERE NOT pv) AS ce"
    a_cols = ", ".join([*a_base, *buckets])
    sql = f"""
ev AS NOT MATERIALIZED (
    SELECT q.scope, e.website_id, e.session_id, e.visitor_id,
        e.event_type = 'pageview' AS pv{ev_select}
    FROM q JOIN events e ON e.website_id = q.website_id AND e.ts >= q.lo AND e.ts < q.hi
    WHERE {" AND ".join(ev_where)}
), la AS (
    SELECT {a_cols}, {sums} FROM ev GROUP BY {a_cols}
),"""
    if dims:
        sets = ", ".join(f"({', '.join([*d_base, d])})" for d in dims)
        whens = " ".join(f"WHEN GROUPING({d}) = 0 THEN {d[1:]}" for d in dims)
        key = f"COALESCE({', '.join(dims)})"
        sql += f"""
ld AS (
    SELECT {", ".join(d_base)}, CASE {whens} END AS code, {key} AS key, {sums}
    FROM ev GROUP BY GROUPING SETS ({sets})
),"""
    if with_session:
        keep = " AND ".join(["TRUE", *(event_filter_sql(f, p, s="o") for f in session_filters)])
        old = "".join(f", {session_value_sql(dim, 'o')}" for _, dim in parts.session_dims)
        sql += _joined("las", "la", ["visitor_id", *buckets], sdims, keep, old)
        a_source = "las"
    else:
        a_source = "la"
    ea = [_distinct_sets(a_source, buckets, sdims)]
    if dims and session_filters:
        sql += _joined("lds", "ld", ["visitor_id", "code", "key"], [], keep, "")
        ea.append(
            "SELECT scope, code, key, NULL::timestamptz AS bucket,"
            " count(DISTINCT visitor_id COLLATE \"C\") AS visitors, sum(pv) AS pageviews, sum(ce) AS events"
            " FROM lds WHERE key IS NOT NULL GROUP BY scope, code, key"
        )
    elif dims:
        ea.append(
            "SELECT scope, code, key, NULL::timestamptz AS bucket, count(*) AS visitors,"
            " sum(pv) AS pageviews, sum(ce) AS events"
            " FROM ld WHERE key IS NOT NULL GROUP BY scope, code, key"
        )
    union = "\n    UNION ALL\n    ".join(ea)
    sql += f"""
ea AS (
    {union}
),"""
    return sql


def _joined(name: str, source: str, cols: list[str], sdims: list[str], keep: str, old: str) -> str:
    """CTE ``name``: rows of ``source`` (with website_id, session_id) whose session passes
    the session filters (``keep`` over ``o``), with the session's dimension values
    ``sdims`` — from ``ss`` or, for a session started before the scope, by primary key
    (``old``: the values over ``o``, in ``sdims`` order)."""
    lookup = (
        f"CASE WHEN ss.session_id IS NULL THEN (SELECT ARRAY[({keep})::text{old}]"
        f" FROM sessions o WHERE o.website_id = {source}.website_id"
        f" AND o.session_id = {source}.session_id) END"
    )
    values = "".join(f", coalesce(x.{d}, x.o[{i}]) AS {d}" for i, d in enumerate(sdims, 2))
    return f"""
{name} AS (
    SELECT x.scope{_cols("x.", cols)}, x.pv, x.ce{values}
    FROM (
        SELECT {source}.*, ss.ev_keep{_cols("ss.", sdims)}, {lookup} AS o
        FROM {source} LEFT JOIN ss
            ON ss.scope = {source}.scope AND ss.session_id = {source}.session_id
    ) x
    WHERE coalesce(x.ev_keep, x.o[1]::boolean)
),"""


def _distinct_sets(source: str, buckets: list[str], keys: list[str]) -> str:
    """Visitors (distinct), page views and custom events of ``source`` rows (partials per
    session or visitor) per scope, bucket and key, by GROUPING SETS."""
    cols = [*buckets, *keys]
    sets = ["(scope)", *(f"(scope, {c})" for c in cols)]
    code = "0"
    if cols:
        whens = " ".join(f"WHEN GROUPING({c}) = 0 THEN {c.lstrip('sdb')}" for c in cols)
        code = f"CASE {whens} ELSE 0 END"
    key = f"COALESCE({', '.join(keys)})" if keys else "NULL::text"
    bucket = f"COALESCE({', '.join(buckets)})" if buckets else "NULL::timestamptz"
    return (
        f"SELECT scope, {code} AS code, {key} AS key, {bucket} AS bucket,"
        f" count(DISTINCT visitor_id COLLATE \"C\") AS visitors, sum(pv) AS pageviews, sum(ce) AS events"
        f" FROM {source} GROUP BY GROUPING SETS ({', '.join(sets)})"
    )


def build_scan(plan: ScanPlan) -> tuple[str, list[Any]]:
    """The statement and its arguments for ``plan``."""
    p = Params()
    scopes = ", ".join(
        f"({p.add(s.website_id, '::text')}, {p.add(s.lo, '::timestamptz')},"
        f" {p.add(s.hi, '::timestamptz')}, {i})"
        for i, s in enumerate(plan.scopes, start=1)
    )
    zone = p.add(plan.zone, "::text") if plan.intervals else ""
    parts = _parts(plan, p, zone)
    session_filters = [f for f in plan.filters if f.on_session]

    ss_cols = [(c, f"b{c}", expr) for c, expr in parts.session_buckets]
    ss_cols += [(c, f"sd{c}", session_value_sql(dim, "s")) for c, dim in parts.session_dims]
    ss_select = "".join(f", {expr} AS {name}" for _, name, expr in ss_cols)
    ss_keep = " AND ".join(["TRUE", *(session_filter_sql(f, p) for f in plan.filters)])
    ev_keep = " AND ".join(["TRUE", *(event_filter_sql(f, p) for f in session_filters)])
    events_side = _events_side(plan, p, parts)
    ss_group, ss_code = _grouped([(c, n) for c, n, _ in ss_cols])
    n_intervals = len(plan.intervals)
    ss_buckets = [n for c, n, _ in ss_cols if c <= n_intervals]
    ss_keys = [n for c, n, _ in ss_cols if c > n_intervals]
    ss_bucket = f"COALESCE({', '.join(ss_buckets)})" if ss_buckets else "NULL::timestamptz"
    ss_key = f"COALESCE({', '.join(ss_keys)})" if ss_keys else "NULL::text"
    ranks = [0] * plan.first_dimension_code + [d.lo for d in plan.dimensions]
    limits = [0] * plan.first_dimension_code + [d.hi for d in plan.dimensions]
    lo_rank = p.add(ranks, "::int[]")
    hi_rank = p.add(limits, "::int[]")
    sql = f"""
WITH q AS NOT MATERIALIZED (
    SELECT * FROM (VALUES {scopes}) AS q(website_id, lo, hi, scope)
), ss AS NOT MATERIALIZED (
    SELECT q.scope, s.session_id, ({ss_keep}) AS keep, ({ev_keep}) AS ev_keep,
        s.pageviews = 1 AND s.events = 0 AS bounce,
        extract(epoch FROM s.last_seen - s.started_at) AS duration,
        s.pageviews AS spv{ss_select}
    FROM q JOIN sessions s
        ON s.website_id = q.website_id AND s.started_at >= q.lo AND s.started_at < q.hi
), {events_side.lstrip()}
sa AS (
    SELECT scope, {ss_code} AS code, {ss_key} AS key, {ss_bucket} AS bucket,
        count(*) AS visits, count(*) FILTER (WHERE bounce) AS bounces,
        sum(duration) AS duration, sum(spv) AS spv
    FROM ss WHERE keep GROUP BY {ss_group}
), m AS (
    SELECT scope, code, key, bucket, max(visitors) AS visitors, max(pageviews) AS pageviews,
        max(events) AS events, max(visits) AS visits, max(bounces) AS bounces,
        max(duration) AS duration, max(spv) AS spv
    FROM (
        SELECT scope, code, key, bucket, visitors, pageviews, events,
            NULL::bigint AS visits, NULL::bigint AS bounces, NULL::numeric AS duration,
            NULL::bigint AS spv
        FROM ea
        UNION ALL
        SELECT scope, code, key, bucket, NULL, NULL, NULL, visits, bounces, duration, spv
        FROM sa
    ) u
    WHERE code < {plan.first_dimension_code} OR key IS NOT NULL
    GROUP BY scope, code, key, bucket
), r AS (
    SELECT m.*,
        row_number() OVER (PARTITION BY scope, code
                           ORDER BY visitors DESC NULLS LAST, key COLLATE "C") AS rn,
        count(visitors) OVER (PARTITION BY scope, code) AS total
    FROM m
)
SELECT scope, code, key, bucket, visitors, pageviews, events, visits, bounces,
    duration::float8 AS duration, spv, total, rn
FROM r
WHERE code < {plan.first_dimension_code} OR rn = 1
   OR (visitors IS NOT NULL AND rn > ({lo_rank})[code + 1] AND rn <= ({hi_rank})[code + 1])
"""
    return sql, p.values


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


async def scan(pool: asyncpg.Pool, plan: ScanPlan) -> list[ScanRow]:
    """Run ``plan`` (one statement). ``InvalidPattern`` for a regex PostgreSQL refuses."""
    sql, args = build_scan(plan)
    try:
        async with translated():
            records = await pool.fetch(tag(sql), *args)
    except asyncpg.exceptions.InvalidRegularExpressionError as exc:
        raise InvalidPattern(str(exc)) from exc
    return [
        ScanRow(
            scope=int(r["scope"]) - 1,
            code=int(r["code"]),
            key=r["key"],
            bucket=r["bucket"],
            visitors=_int(r["visitors"]),
            pageviews=_int(r["pageviews"]),
            events=_int(r["events"]),
            visits=_int(r["visits"]),
            bounces=_int(r["bounces"]),
            duration=None if r["duration"] is None else float(r["duration"]),
            session_pageviews=_int(r["spv"]),
            total=_int(r["total"]),
            rank=int(r["rn"]),
        )  # fmt: skip
        for r in records
    ]
