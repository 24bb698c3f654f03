"""Realtime activity and the raw event list (keyset pagination on ``(ts, id)``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import translated
from db.queries.dimensions import (
    NOT_IGNORED,
    FilterSpec,
    Params,
    event_filter_sql,
    session_join_sql,
)
from db.queries.stats import InvalidPattern

REALTIME_SQL = f"""
WITH w AS (
    SELECT e.website_id, e.visitor_id, e.event_type = 'pageview' AS pv,
        CASE WHEN e.event_type = 'pageview' THEN e.page END AS page
    FROM events e
    WHERE e.website_id = ANY($1::text[]) AND e.ts >= $2 AND e.ts <= $3 AND {NOT_IGNORED}
), g AS (
    SELECT website_id, GROUPING(page) AS total_row, page,
        count(DISTINCT visitor_id) AS visitors, count(*) FILTER (WHERE pv) AS pageviews
    FROM w GROUP BY GROUPING SETS ((website_id), (website_id, page))
), r AS (
    SELECT g.*, row_number() OVER (PARTITION BY website_id, total_row
                                   ORDER BY visitors DESC, page COLLATE "C") AS rn
    FROM g WHERE total_row = 1 OR page IS NOT NULL
)
SELECT website_id, total_row = 1 AS is_total, page, visitors, pageviews
FROM r WHERE total_row = 1 OR rn <= $4
ORDER BY website_id, is_total DESC, rn
"""


@dataclass(frozen=True)
class RealtimeGroup:
    """``page`` None: the website's totals; else one of its top pages."""

    website_id: str
    page: str | None
    visitors: int
    pageviews: int


async def realtime(
    pool: asyncpg.Pool, website_ids: list[str], start: datetime, end: datetime, top: int
) -> list[RealtimeGroup]:
    """Totals and the ``top`` pages (by visitors, then path) of events in [start, end]."""
    async with translated():
        rows = await pool.fetch(REALTIME_SQL, website_ids, start, end, top)
    return [
        RealtimeGroup(
            r["website_id"],
            None if r["is_total"] else r["page"],
            int(r["visitors"]),
            int(r["pageviews"]),
        )  # fmt: skip
        for r in rows
    ]


EVENT_FIELDS = (
    "id", "ts", "event_type", "visitor_id", "session_id", "page", "referrer", "referrer_host",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "country", "city",
    "browser", "os", "device", "screen", "time_on_page", "properties", "received_at",
)  # fmt: skip


@dataclass(frozen=True)
class EventPageRequest:
    """One website's page of events, newest first, strictly before ``after``."""

    website_id: str
    after: tuple[datetime, uuid.UUID] | None


async def list_events(
    pool: asyncpg.Pool,
    requests: list[EventPageRequest],
    lo: datetime | None,
    hi: datetime | None,
    filters: tuple[FilterSpec, ...],
    first: int,
) -> dict[int, list[dict[str, Any]]]:
    """Up to ``first`` events per request (ordered ``ts DESC, id DESC``) with ts in
    [lo, hi) when given, matching ``filters``; by request index. One statement."""
    p = Params()
    sites = p.add([r.website_id for r in requests], "::text[]")
    ts = p.add([r.after[0] if r.after else None for r in requests], "::timestamptz[]")
    ids = p.add([r.after[1] if r.after else None for r in requests], "::uuid[]")
    where = ["e.website_id = q.website_id"]
    where.append("(q.cts IS NULL OR (e.ts, e.id) < (q.cts, q.cid))")
    if lo is not None:
        where.append(f"e.ts >= {p.add(lo, '::timestamptz')}")
    if hi is not None:
        where.append(f"e.ts < {p.add(hi, '::timestamptz')}")
    where += [event_filter_sql(f, p) for f in filters]
    join = session_join_sql(filters)
    cols = ", ".join(f"e.{c}" for c in EVENT_FIELDS)
    sql = f"""
SELECT q.n, x.* FROM unnest({sites}, {ts}, {ids}) WITH ORDINALITY AS q(website_id, cts, cid, n)
CROSS JOIN LATERAL (
    SELECT {cols} FROM events e {join}
    WHERE {" AND ".join(where)}
    ORDER BY e.ts DESC, e.id DESC LIMIT {p.add(first, "::int")}
) x
ORDER BY q.n, x.ts DESC, x.id DESC
"""
    try:
        async with translated():
            rows = await pool.fetch(sql, *p.values)
    except asyncpg.exceptions.InvalidRegularExpressionError as exc:
        raise InvalidPattern(str(exc)) from exc
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(int(r["n"]) - 1, []).append({c: r[c] for c in EVENT_FIELDS})
    return out
