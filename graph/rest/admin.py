"""Admin statistics (reference §3.14): ``GET /api/v1/admin/funnels/stats``,
``/api/v1/admin/analytics/stats`` and ``/api/v1/admin/funnels?page&limit``.

Scoped to the websites the caller's credentials name: ``GLOBAL_API_KEY`` and ``*``
tokens see every website; a token or API key for some websites sees only those (other
tenants' public websites are not included).
Event numbers come from ``resolvers.stats.load_stats`` (one statement for all
websites): ``total_events`` = page views + custom events over the retention period,
``total_pageviews`` = page views, ``events_today`` / ``unique_visitors_today`` = the
same over the current UTC day (visitors summed over websites).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response

from db.queries import compat as compat_sql
from graph.http import JSONResponse
from graph.rest.common import Param, RestRoute, RouteDoc, guarded, load, positive_int
from graph.rest.funnels import FUNNEL, funnel_json
from resolvers.access import Principal
from resolvers.ranges import Range
from resolvers.runtime import Runtime
from resolvers.stats_types import Scope, StatsKey, Summary
from resolvers.websites import list_visible

PREFIX = "/api/v1/admin"
MAX_PAGE_SIZE = 1000


async def _owned(rt: Runtime, who: Principal) -> list[str] | None:
    """None = every website (``GLOBAL_API_KEY``, ``*`` tokens); else the ids of the
    websites the caller's credentials name (public websites of others excluded)."""
    if who.all_websites:
        return None
    return [s.id for s in await list_visible(rt, who) if who.owns(s.id)]


async def funnel_stats(request: Request, rt: Runtime, who: Principal) -> Response:
    ids = await _owned(rt, who)
    total, active = await compat_sql.funnel_counts(rt.pools.read, ids)
    recent = await compat_sql.funnel_page(rt.pools.read, ids, 10, 0)
    return JSONResponse({"total": total, "recent": [funnel_json(r) for r in recent],
                         "active": active})  # fmt: skip


async def analytics_stats(request: Request, rt: Runtime, who: Principal) -> Response:
    owned = await _owned(rt, who)
    sites = owned if owned is not None else [s.id for s in await list_visible(rt, who)]
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), time(0), tzinfo=UTC)
    # "all time" = the retention period, up to the 5 minutes of clock skew tracking allows
    ever = Range(now - timedelta(days=rt.retention_days), now + timedelta(minutes=5), "UTC")
    today = Range(midnight, midnight + timedelta(days=1), "UTC")
    keys = [StatsKey(Scope(s, r), "summary") for r in (ever, today) for s in sites]
    found = await load(rt, keys) if keys else []
    half = len(sites)
    all_time = [f for f in found[:half] if isinstance(f, Summary)]
    day = [f for f in found[half:] if isinstance(f, Summary)]
    return JSONResponse({
        "total_events": sum(s.pageviews + s.events for s in all_time),
        "events_today": sum(s.pageviews + s.events for s in day),
        "unique_visitors_today": sum(s.visitors for s in day),
        "total_pageviews": sum(s.pageviews for s in all_time),
    })  # fmt: skip


async def funnel_list(request: Request, rt: Runtime, who: Principal) -> Response:
    page = positive_int(request, "page", 1)
    limit = positive_int(request, "limit", 20, MAX_PAGE_SIZE)
    ids = await _owned(rt, who)
    total, _ = await compat_sql.funnel_counts(rt.pools.read, ids)
    offset = (page - 1) * limit  # a page past the end is empty (and may not fit a bigint)
    rows = await compat_sql.funnel_page(rt.pools.read, ids, limit, offset) if offset < total else []
    pages = math.ceil(total / limit)
    return JSONResponse({"funnels": [funnel_json(r) for r in rows], "pagination": {
        "current_page": page, "total_pages": pages, "total_funnels": total,
        "has_next_page": page < pages, "has_prev_page": page > 1}})  # fmt: skip


_SCOPE = "scoped to the websites the credentials name (old: every website, shared key only)"
ROUTES = [
    RestRoute("GET", f"{PREFIX}/funnels/stats",
              guarded("Failed to fetch funnel statistics", funnel_stats), RouteDoc(
        "Funnel counts and the 10 newest funnels.", "—",
        (_SCOPE, "recent is [] when empty (old: null)"), (),
        {"total": "integer", "recent": [FUNNEL], "active": "integer"}, errors=(401,))),
    RestRoute("GET", f"{PREFIX}/analytics/stats",
              guarded("Failed to fetch analytics statistics", analytics_stats), RouteDoc(
        "Event totals over all of the caller's websites.",
        "websites { stats(range) { summary { pageviews events visitors } } }",
        (_SCOPE, "total_events counts page views and custom events of the retention period; "
         "today = the current UTC day by event time (old: by ingestion time); "
         "unique_visitors_today is summed over websites"), (),
        {"total_events": "integer", "events_today": "integer",
         "unique_visitors_today": "integer", "total_pageviews": "integer"}, errors=(401,))),
    RestRoute("GET", f"{PREFIX}/funnels", guarded("Failed to fetch funnels", funnel_list),
              RouteDoc(
        "All funnels, newest first, paginated.", "website(id).funnels",
        (_SCOPE, "page offsets the data (old: ignored); limit ≤ 1000; limit=0 or "
         "non-numeric uses the default (old: 500 panic)"),
        (Param("page", kind="integer", description="1-based page (default 1)."),
         Param("limit", kind="integer", description="Page size (default 20, ≤ 1000).")),
        {"funnels": [FUNNEL], "pagination": {
            "current_page": "integer", "total_pages": "integer", "total_funnels": "integer",
            "has_next_page": "boolean", "has_prev_page": "boolean"}}, errors=(401,))),
]  # fmt: skip
