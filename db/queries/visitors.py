"""SQL for new vs returning visitors of a range (metrics.md "visitors", split in two).

A visitor of ``[lo, hi)`` is a distinct ``visitor_id`` with an event (``session_start``
/ ``session_end`` ignored) in the range that passes the filters (event-based filter
rules); it is *returning* when it has any event of the website before ``lo`` (filters
do not apply to that earlier event), else *new*. Uses the (website_id, visitor_id)
index for the look-back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.errors import translated
from db.queries.dimensions import (
    IGNORED_EVENT_TYPES,
    NOT_IGNORED,
    FilterSpec,
    Params,
    event_filter_sql,
    session_join_sql,
)
from db.queries.stats import InvalidPattern


@dataclass(frozen=True)
class VisitorCounts:
    """Distinct visitors of the range, and how many of them were seen before it."""

    visitors: int
    returning: int


async def visitor_counts(
    pool: asyncpg.Pool,
    website_id: str,
    lo: datetime,
    hi: datetime,
    filters: tuple[FilterSpec, ...] = (),
) -> VisitorCounts:
    """Visitors with an event in ``[lo, hi)`` and those of them with an event before ``lo``."""
    p = Params()
    site = p.add(website_id, "::text")
    start = p.add(lo, "::timestamptz")
    where = [f"e.website_id = {site}", f"e.ts >= {start}",
             f"e.ts < {p.add(hi, '::timestamptz')}", NOT_IGNORED]  # fmt: skip
    where += [event_filter_sql(f, p) for f in filters]
    join = session_join_sql(filters)
    ignored = ", ".join(f"'{t}'" for t in IGNORED_EVENT_TYPES)
    sql = f"""
WITH v AS (SELECT DISTINCT e.visitor_id FROM events e {join} WHERE {" AND ".join(where)})
SELECT count(*) AS visitors,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM events b
           WHERE b.website_id = {site} AND b.visitor_id = v.visitor_id AND b.ts < {start}
             AND b.event_type NOT IN ({ignored}))) AS returning
FROM v
"""
    try:
        async with translated():
            row = await pool.fetchrow(sql, *p.values)
    except asyncpg.exceptions.InvalidRegularExpressionError as exc:
        raise InvalidPattern(str(exc)) from exc
    assert row is not None
    return VisitorCounts(int(row["visitors"]), int(row["returning"]))
