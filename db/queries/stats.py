"""The stats scan: summary, time series and breakdowns of many scopes in ONE statement.

A *scope* is (website, [lo, hi)). One statement answers, for every scope of a plan,
the summary, the buckets of each requested interval and the rows of each requested
breakdown, under one list of filters:

* events side — events with ``ts`` in the scope (``session_start``/``session_end``
  ignored), filtered, first summed per session (and per visitor and value for event
  dimensions) by hashing, then grouped with ``GROUPING SETS`` into visitors
  (distinct), page views and custom events (see ``db/queries/stats_events_side.py``);
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
    SESSION_DIMENSIONS,
    FilterSpec,
    Params,
    event_filter_sql,
    event_value_sql,
    grouped,
    session_filter_sql,
    session_value_sql,
)
from db.queries.stats_events_side import Parts
from db.queries.stats_events_side import events_side as events_side_sql
from db.tracing import tag

CALENDAR_UNITS = {"DAY": "day", "WEEK": "week", "MONTH": "month"}


class InvalidPattern(DatabaseError):
    """PostgreSQL refused a MATCHES regular expression."""


@dataclass(frozen=True)
class ScanScope:
    """A website and a half-open UTC range. A plan computes, for each scope, the summary,
    series and session dimensions (``main``) and the event dimensions (``events``);
    either can be switched off per scope, so that one statement can carry two parts of
    different requests (see ``resolvers.stats``)."""

    website_id: str
    lo: datetime
    hi: datetime
    main: bool = True
    events: bool = True


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
    #: The session rollup (``stats_events_side.rollup_las``) may serve scopes starting
    #: at or after this instant (None: never); it never serves event filters.
    rollup_since: datetime | None = None

    @property
    def first_dimension_code(self) -> int:
        return 1 + len(self.intervals)

    @property
    def uses_rollup(self) -> bool:
        since = self.rollup_since
        return (
            since is not None
            and all(s.lo >= since for s in self.scopes)
            and all(f.on_session for f in self.filters)
        )


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


def bucket_sql(column: str, interval: str, zone: str) -> str:
    local = f"({column} AT TIME ZONE {zone})"
    if interval == "HOUR":
        # The latest instant at or before the row's that reads hh:00 locally: back by the
        # local minutes, then once more from there — the first step lands off the hour
        # only across a change of offset by a fraction of an hour (Lord_Howe's 30 min).
        # Same rule as resolvers.ranges._hour_start.
        once = f"({column} - ({local} - date_trunc('hour', {local})))"
        again = f"({once} AT TIME ZONE {zone})"
        return f"({once} - ({again} - date_trunc('hour', {again})))"
    return f"(date_trunc('{CALENDAR_UNITS[interval]}', {local}) AT TIME ZONE 'UTC')"


def _grouped(columns: list[tuple[int, str]]) -> tuple[str, str]:
    """GROUPING SETS clause and set-code expression for ``columns`` [(code, name)]."""
    sets = ", ".join(["(scope)", *(f"(scope, {name})" for _, name in columns)])
    if not columns:
        return f"GROUPING SETS ({sets})", "0"
    whens = " ".join(f"WHEN GROUPING({name}) = 0 THEN {code}" for code, name in columns)
    return f"GROUPING SETS ({sets})", f"CASE {whens} ELSE 0 END"


def _parts(plan: ScanPlan, p: Params, zone: str) -> Parts:
    parts = Parts([], [], [], [], [])
    for i, interval in enumerate(plan.intervals, start=1):
        parts.event_buckets.append((i, bucket_sql("e.ts", interval, zone)))
        parts.session_buckets.append((i, bucket_sql("s.started_at", interval, zone)))
        parts.session_end_buckets.append((i, bucket_sql("s.last_seen", interval, zone)))
    for i, d in enumerate(plan.dimensions, start=plan.first_dimension_code):
        if d.dimension in SESSION_DIMENSIONS:
            parts.session_dims.append((i, d.dimension))
        else:
            prop = p.add(d.property, "::text") if d.dimension == "PROPERTY" else None
            parts.event_dims.append((i, grouped(event_value_sql(d.dimension, prop, "e"))))
    return parts


def scope_values(plan: ScanPlan, p: Params) -> str:
    """``VALUES`` rows (website_id, lo, hi, scope number from 1, main, events) of the
    plan's scopes."""
    return ", ".join(
        f"({p.add(s.website_id, '::text')}, {p.add(s.lo, '::timestamptz')},"
        f" {p.add(s.hi, '::timestamptz')}, {i}, {s.main}, {s.events})"
        for i, s in enumerate(plan.scopes, start=1)
    )


def build_scan(plan: ScanPlan) -> tuple[str, list[Any]]:
    """The statement and its arguments for ``plan``."""
    p = Params()
    scopes = scope_values(plan, p)
    zone = p.add(plan.zone, "::text") if plan.intervals else ""
    parts = _parts(plan, p, zone)
    session_filters = [f for f in plan.filters if f.on_session]

    ss_cols = [(c, f"b{c}", expr) for c, expr in parts.session_buckets]
    ss_cols += [(c, f"sd{c}", grouped(session_value_sql(dim, "s")))
                for c, dim in parts.session_dims]  # fmt: skip
    ss_select = "".join(f", {expr} AS {name}" for _, name, expr in ss_cols)
    ss_keep = " AND ".join(["TRUE", *(session_filter_sql(f, p) for f in plan.filters)])
    ev_keep = " AND ".join(["TRUE", *(event_filter_sql(f, p) for f in session_filters)])
    events_side = events_side_sql(plan.filters, p, parts, rollup=plan.uses_rollup)
    # the rollup's ``rs`` holds the sessions started in each scope too (see rollup_las)
    sa_source = (
        "rs WHERE keep AND started_at >= lo" if plan.uses_rollup else "ss WHERE keep AND want_main"
    )
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
    SELECT * FROM (VALUES {scopes}) AS q(website_id, lo, hi, scope, want_main, want_events)
), ss AS NOT MATERIALIZED (
    SELECT q.scope, q.want_main, s.session_id, ({ss_keep}) AS keep, ({ev_keep}) AS ev_keep,
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
    FROM {sa_source} GROUP BY {ss_group}
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
