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
    grouped,
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
    session_end_buckets: list[tuple[int, str]]  # (code, expression over s.last_seen)


#: Distinct visitors, compared bytewise (the same equality as the database collation's,
#: cheaper to sort)
DISTINCT_VISITORS = 'count(DISTINCT visitor_id COLLATE "C")'


def _cols(prefix: str, names: list[str]) -> str:
    return "".join(f", {prefix}{n}" for n in names)


def events_side(
    filters: tuple[FilterSpec, ...], p: Params, parts: Parts, *, rollup: bool = False
) -> str:
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

    With ``rollup`` (no event filters; see ``rollup_las``) steps 1–2 for ``las`` read
    the sessions instead of every event; ``ld`` is unchanged.
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
    SELECT q.scope, q.want_main, q.want_events, e.website_id, e.session_id, e.visitor_id,
        e.event_type = 'pageview' AS pv{ev_select}
    FROM q JOIN events e ON e.website_id = q.website_id AND e.ts >= q.lo AND e.ts < q.hi
    WHERE {" AND ".join(ev_where)}
),"""
    if rollup:
        sql += rollup_las(p, parts, session_filters)
    else:
        sql += f"""
la AS (
    SELECT {a_cols}, {sums} FROM ev WHERE want_main GROUP BY {a_cols}
),"""
    if dims:
        sets = ", ".join(f"({', '.join([*d_base, d])})" for d in dims)
        whens = " ".join(f"WHEN GROUPING({d}) = 0 THEN {d[1:]}" for d in dims)
        key = f"COALESCE({', '.join(dims)})"
        sql += f"""
ld AS (
    SELECT {", ".join(d_base)}, CASE {whens} END AS code, {key} AS key, {sums}
    FROM ev WHERE want_events GROUP BY GROUPING SETS ({sets})
),"""
    keep = None  # session filters over ``o``, built where used (an unused parameter has no type)
    a_source = "la"
    if rollup:
        a_source = "las"
    elif with_session:
        keep = _keep_over_o(session_filters, p)
        old = "".join(f", {grouped(session_value_sql(dim, 'o'))}" for _, dim in parts.session_dims)
        sql += _joined("las", "la", ["visitor_id", *buckets], sdims, keep, old)
        a_source = "las"
    ea = [_distinct_sets(a_source, buckets, sdims)]
    if dims and session_filters:
        keep = keep or _keep_over_o(session_filters, p)
        sql += _joined("lds", "ld", ["visitor_id", "code", "key"], [], keep, "")
        ea.append(
            "SELECT scope, code, key, NULL::timestamptz AS bucket,"
            f" {DISTINCT_VISITORS} AS visitors, sum(pv) AS pageviews, sum(ce) AS events"
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


def _keep_over_o(session_filters: list[FilterSpec], p: Params) -> str:
    return " AND ".join(["TRUE", *(event_filter_sql(f, p, s="o") for f in session_filters)])


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
        f" {DISTINCT_VISITORS} AS visitors, sum(pv) AS pageviews, sum(ce) AS events"
        f" FROM {source} GROUP BY GROUPING SETS ({', '.join(sets)})"
    )


#: Sessions longer than this are indexed by last_seen (``sessions_site_long``,
#: migration 007); shorter ones that reach into a range start less than this before it.
LONG_SESSION = "interval '1 hour'"


def rollup_las(p: Params, parts: Parts, session_filters: list[FilterSpec]) -> str:
    """CTEs ``rs0``, ``rs``, ``las``: the rows of ``las`` (scope, visitor_id, buckets, pv,
    ce, session dimensions) from the *session rollup* — the ``sessions`` table, which
    ``db/writer.py`` keeps current on every commit — instead of every event in range.

    ``rs0``/``rs``: the sessions that may have events in a scope [lo, hi): started in
    it, or started before it with ``last_seen >= lo`` (those that started within
    ``LONG_SESSION`` before lo from ``sessions_site_started``, longer ones from
    ``sessions_site_long``). A session is *whole* when it started in the scope, its last
    event is before hi, its first and last events fall in the same bucket of every
    requested interval, and its events carry one visitor: then all its counted events
    are in the scope and in one bucket, and its stored page views and custom events
    (``pageviews``, ``events``: counted events only) are exactly what the events would
    sum to. Every other session (crossing a range edge or a bucket boundary, mixed
    visitors: a few percent) is summed from its own events in the scope, read by
    ``(website_id, session_id)``. The result equals ``la`` joined to its sessions; the
    caller uses it only without event filters and for scopes that retention has not cut
    into (a session's stored counts would include deleted events). ``rs`` also carries
    what the sessions side needs (bounce, duration, spv), so that ``sa`` reads the
    sessions started in the scope from it instead of scanning them again."""
    keep = " AND ".join(["TRUE", *(event_filter_sql(f, p) for f in session_filters)])
    whole = ["s.started_at >= s.lo", "s.last_seen < s.hi", "NOT s.mixed_visitors",
             "s.pageviews + s.events > 0"]  # fmt: skip
    ends = dict(parts.session_end_buckets)
    whole += [f"{expr} = {ends[c]}" for c, expr in parts.session_buckets]
    b_names = [f"b{c}" for c, _ in parts.event_buckets]
    sdims = [f"sd{c}" for c, _ in parts.session_dims]
    b_whole = "".join(f", {expr} AS b{c}" for c, expr in parts.session_buckets)
    b_event = "".join(f", {expr} AS b{c}" for c, expr in parts.event_buckets)
    sd_values = "".join(
        f", {grouped(session_value_sql(dim, 's'))} AS sd{c}" for c, dim in parts.session_dims
    )
    n_b = len(b_names)
    # positions in the SELECT list: scope, visitor_id, buckets, (pv, ce), dimensions
    positions = [1, 2, *range(3, 3 + n_b), *range(5 + n_b, 5 + n_b + len(sdims))]
    group = ", ".join(str(i) for i in positions)
    return f"""
rs0 AS NOT MATERIALIZED (
    SELECT q.scope, q.lo, q.hi, s.*
    FROM q JOIN sessions s ON q.want_main AND s.website_id = q.website_id
        AND s.started_at >= q.lo - {LONG_SESSION} AND s.started_at < q.hi
    WHERE s.started_at >= q.lo OR s.last_seen >= q.lo
    UNION ALL
    SELECT q.scope, q.lo, q.hi, s.*
    FROM q JOIN sessions s ON q.want_main AND s.website_id = q.website_id AND s.last_seen >= q.lo
        AND s.last_seen - s.started_at > {LONG_SESSION} AND s.started_at < q.lo - {LONG_SESSION}
), rs AS (
    SELECT s.scope, s.lo, s.hi, s.website_id, s.session_id, s.visitor_id, s.pageviews,
        s.events, s.started_at, ({keep}) AS keep, ({" AND ".join(whole)}) AS whole,
        s.pageviews = 1 AND s.events = 0 AS bounce,
        extract(epoch FROM s.last_seen - s.started_at) AS duration,
        s.pageviews AS spv{b_whole}{sd_values}
    FROM rs0 s
), las AS (
    SELECT scope, visitor_id{_cols("", b_names)}, pageviews AS pv, events AS ce{_cols("", sdims)}
    FROM rs WHERE keep AND whole
    UNION ALL
    SELECT s.scope, e.visitor_id{b_event},
        count(*) FILTER (WHERE e.event_type = 'pageview') AS pv,
        count(*) FILTER (WHERE e.event_type <> 'pageview') AS ce{_cols("s.", sdims)}
    FROM rs s JOIN events e ON e.website_id = s.website_id AND e.session_id = s.session_id
        AND e.ts >= s.lo AND e.ts < s.hi
    WHERE s.keep AND NOT s.whole AND {NOT_IGNORED}
    GROUP BY {group}
),"""
