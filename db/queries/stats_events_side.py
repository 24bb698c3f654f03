"""The events side of the stats scan (``db/queries/stats.py``): CTEs ``ev`` … ``ea`` that
give, per (scope, set code, key, bucket), distinct visitors, page views and custom events
of the events in each scope, under the plan's filters. See ``events_side``."""

from __future__ import annotations

from dataclasses import dataclass

from db.queries.dimensions import (
    NOT_IGNORED,
    FilterSpec,
    Params,
    event_filter_sql,
    session_value_sql,
)


@dataclass
class Parts:
    """The columns of one plan, named by set code: buckets ``b<code>``, session
    dimensions ``sd<code>``, event dimensions ``d<code>``."""

    event_buckets: list[tuple[int, str]]  # (code, expression over e.ts)
    session_buckets: list[tuple[int, str]]  # (code, expression over s.started_at)
    session_dims: list[tuple[int, str]]  # (code, Dimension name)
    event_dims: list[tuple[int, str]]  # (code, value over e; NULL where it does not apply)


def _cols(prefix: str, names: list[str]) -> str:
    return "".join(f", {prefix}{n}" for n in names)


def events_side(filters: tuple[FilterSpec, ...], p: Params, parts: Parts) -> str:
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
    session_filters = [f for f in filters if f.on_session]
    with_session = bool(parts.session_dims) or bool(session_filters)
    buckets = [f"b{c}" for c, _ in parts.event_buckets]
    dims = [f"d{c}" for c, _ in parts.event_dims]
    sdims = [f"sd{c}" for c, _ in parts.session_dims]
    sid = ["website_id", "session_id"]
    a_base = ["scope", *sid, "visitor_id"] if with_session else ["scope", "visitor_id"]
    d_base = ["scope", *sid, "visitor_id"] if session_filters else ["scope", "visitor_id"]
    ev_select = "".join(f", {expr} AS b{c}" for c, expr in parts.event_buckets)
    ev_select += "".join(f", {expr} AS d{c}" for c, expr in parts.event_dims)
    ev_where = [NOT_IGNORED, *(event_filter_sql(f, p) for f in filters if not f.on_session)]
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
