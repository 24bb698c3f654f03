"""``GET /api/v1/analytics/{dashboard,traffic-summary,activity-trends,daily-stats,
hourly-stats,live-visitors,realtime}/:website_id`` (reference §3.5–3.11).

Thin adapters over ``resolvers.stats.load_stats`` (the function behind GraphQL
``Website.stats``), ``resolvers.realtime.load_realtime`` (``Website.realtime``) and
``resolvers.visitors.load_visitor_mix``; field mapping per rest-compat.md. ``days=N``
is [now − N days, now) in UTC; ``country``, ``device``, ``browser``, ``os``,
``utm_source``, ``utm_medium``, ``utm_campaign`` and ``page_path`` filter like GraphQL
IS filters.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from graph.http import JSONResponse
from graph.rest.common import (
    Param,
    RestRoute,
    RouteDoc,
    days_param,
    days_range,
    guarded,
    load,
    query,
    query_filters,
    rfc3339,
    visible_website,
)
from resolvers.access import Principal
from resolvers.ranges import Range, preset_range
from resolvers.realtime import load_realtime
from resolvers.runtime import Runtime
from resolvers.stats_types import Bucket, Scope, StatsKey, Summary, change
from resolvers.visitors import load_visitor_mix
from resolvers.websites import check_timezone

PREFIX = "/api/v1/analytics"
SITE = Param("website_id", "path", description="The website's id.", required=True)
DAYS = Param("days", kind="integer", description="Range [now − days, now) in UTC; a positive "
             "integer, else 7; at most the retention.")  # fmt: skip
FILTERS = tuple(
    Param(n, description="Optional IS filter (GraphQL FilterInput) on this dimension.")
    for n in ("country", "device", "browser", "os", "utm_source", "utm_medium", "utm_campaign",
              "page_path")
)  # fmt: skip
TZ = Param("timezone", description="IANA zone of the hour buckets (default UTC); unknown → 400.")


def _scope(request: Request, site_id: str, rng: Range) -> Scope:
    return Scope(site_id, rng, query_filters(request))


def _rate(value: float | None) -> float:
    """A change for fields the old clients read as numbers: 0 when not computable."""
    return 0.0 if value is None else value


async def dashboard(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    days = days_param(request, rt)
    scope = _scope(request, site.id, days_range(days))
    found, live = await asyncio.gather(
        load(rt, [StatsKey(scope, "summary"), StatsKey(scope.previous(), "summary")]),
        load_realtime(rt, [site.id]),
    )
    cur, prev = found[0], found[1]
    assert isinstance(cur, Summary) and isinstance(prev, Summary)
    ch = change(cur, prev)
    names = {"total_visitor_change": "visits", "visitor_change": "visitors",
             "pageview_change": "pageviews", "session_change": "visits",
             "bounce_change": "bounce_rate", "duration_change": "visit_duration"}  # fmt: skip
    comparison = {k: ch[v] for k, v in names.items() if ch[v] is not None}
    return JSONResponse({
        "website_id": site.id, "date_range": f"{days} days", "total_visitors": cur.visits,
        "unique_visitors": cur.visitors, "live_visitors": live[0].visitors,
        "page_views": cur.pageviews, "session_duration": cur.visit_duration,
        "bounce_rate": cur.bounce_rate, "comparison": comparison,
    })  # fmt: skip


async def traffic_summary(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    scope = _scope(request, site.id, days_range(days_param(request, rt)))
    found, mix = await asyncio.gather(
        load(rt, [StatsKey(scope, "summary"), StatsKey(scope.previous(), "summary")]),
        load_visitor_mix(rt, [scope]),
    )
    cur, prev = found[0], found[1]
    assert isinstance(cur, Summary) and isinstance(prev, Summary)
    ch = change(cur, prev)
    return JSONResponse({
        "total_page_views": cur.pageviews, "total_visitors": cur.visits,
        "unique_visitors": cur.visitors, "total_sessions": cur.visits,
        "bounce_rate": cur.bounce_rate, "avg_session_time": cur.visit_duration,
        "pages_per_session": cur.views_per_visit, "growth_rate": _rate(ch["pageviews"]),
        "visitors_growth_rate": _rate(ch["visitors"]),
        "sessions_growth_rate": _rate(ch["visits"]), "new_visitors": mix[0].new,
        "returning_visitors": mix[0].returning,
        "engagement_score": 100.0 - cur.bounce_rate if cur.visits else 0.0,
        "retention_rate": 100.0 * mix[0].returning / mix[0].visitors if mix[0].visitors else 0.0,
    })  # fmt: skip


def _last_24_hours(request: Request) -> Range:
    """The 24 hours ending with the end of the current hour in ``timezone`` (default UTC)."""
    zone = check_timezone(query(request, "timezone") or "UTC", "timezone")
    lo, hi = preset_range("LAST_24_HOURS", zone, datetime.now(UTC))
    return Range(lo, hi, zone)


async def _hours(request: Request, rt: Runtime, site_id: str) -> tuple[Range, list[Bucket]]:
    rng = _last_24_hours(request)
    found = await load(rt, [StatsKey(_scope(request, site_id, rng), "timeseries",
                                     interval="HOUR")])  # fmt: skip
    assert isinstance(found[0], list)
    return rng, found[0]


async def hourly_stats(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    rng, buckets = await _hours(request, rt, site.id)
    items = [{"hour": b.start.hour, "timestamp": rfc3339(b.start), "views": b.pageviews,
              "unique": b.visitors, "hour_label": f"{b.start.hour:02d}:{b.start.minute:02d}"}
             for b in buckets]  # fmt: skip
    return JSONResponse({"website_id": site.id, "date_range": "24 hours", "timezone": rng.zone,
                         "hourly_stats": items})  # fmt: skip


async def activity_trends(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    _, buckets = await _hours(request, rt, site.id)

    def series(attr: str) -> list[dict[str, Any]]:
        return [{"timestamp": rfc3339(b.start), "value": getattr(b, attr)} for b in buckets]

    trends = {"page_views": series("pageviews"), "visitors": series("visitors"),
              "sessions": series("visits")}  # fmt: skip
    return JSONResponse({"website_id": site.id, "trends": trends})


async def daily_stats(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    days = days_param(request, rt, 30)
    scope = _scope(request, site.id, days_range(days))
    found = await load(rt, [StatsKey(scope, "timeseries", interval="DAY")])
    assert isinstance(found[0], list)
    items = [{"date": b.start.strftime("%Y-%m-%dT00:00:00Z"), "views": b.pageviews,
              "unique": b.visitors} for b in reversed(found[0])]  # fmt: skip
    return JSONResponse({"website_id": site.id, "date_range": f"{days} days",
                         "daily_stats": items})  # fmt: skip


async def live_visitors(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    live = (await load_realtime(rt, [site.id]))[0]
    return JSONResponse({"website_id": site.id, "live_visitors": live.visitors,
                         "timestamp": rfc3339(datetime.now(UTC).replace(microsecond=0))})  # fmt: skip


async def realtime(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    live = (await load_realtime(rt, [site.id]))[0]
    pages = [{"page": r.value, "views": r.pageviews or 0, "unique": r.visitors}
             for r in live.top_pages[:10]]  # fmt: skip
    return JSONResponse({"website_id": site.id, "live_visitors": live.visitors,
                         "page_views": live.pageviews, "top_pages": pages,
                         "timestamp": rfc3339(datetime.now(UTC).replace(microsecond=0))})  # fmt: skip


_RANGE_NOTE = "days=N is [now − N days, now) in UTC (old: rolling window, no upper bound)"
_COMPARISON = {f"{k}?": "number" for k in ("total_visitor_change", "visitor_change",
               "pageview_change", "session_change", "bounce_change", "duration_change")}  # fmt: skip
_HOUR_ITEM = {"hour": "integer", "timestamp": "string", "views": "integer",
              "unique": "integer", "hour_label": "string"}  # fmt: skip
_POINT = [{"timestamp": "string", "value": "integer"}]


def _r(name: str, handler: Any, doc: RouteDoc, failure: str) -> RestRoute:
    return RestRoute("GET", f"{PREFIX}/{name}/{{website_id}}", guarded(failure, handler), doc)


ROUTES = [
    _r(
        "dashboard",
        dashboard,
        RouteDoc(
            "Summary cards of the dashboard.",
            "website.stats(range).summary(compare: true) + website.realtime.visitors",
            (
                _RANGE_NOTE,
                "total_visitors = visits (sessions started in range), session_duration "
                "= visitDuration (mean over visits, not page-view weighted, no caps/defaults)",
                "comparison is always present; a change is omitted only when the previous value is 0 "
                "(old: omitted below 10, clamped to ±500, absent for days > 30)",
                "query filters country, device, browser, os, utm_*, page_path are applied",
            ),
            (SITE, DAYS, *FILTERS),
            {
                "website_id": "string",
                "date_range": "string",
                "total_visitors": "integer",
                "unique_visitors": "integer",
                "live_visitors": "integer",
                "page_views": "integer",
                "session_duration": "number",
                "bounce_rate": "number",
                "comparison": _COMPARISON,
            },
            errors=(401, 404),
        ),
        "Failed to get dashboard data",
    ),  # fmt: skip
    _r(
        "traffic-summary",
        traffic_summary,
        RouteDoc(
            "Traffic summary with growth and new/returning visitors.",
            "website.stats(range).summary(compare: true); new/returning: resolvers.visitors",
            (
                _RANGE_NOTE,
                "growth rates = change against the previous period (0 when the previous "
                "value is 0); new/returning computed (returning = had an event before the range)",
                "engagement_score = 100 − bounce_rate (0 without visits); retention_rate = 100 × "
                "returning / unique visitors (old: constants 50 and 25)",
                "avg_session_time = visitDuration (not rounded, not page-view weighted)",
            ),
            (SITE, DAYS, *FILTERS),
            {
                "total_page_views": "integer",
                "total_visitors": "integer",
                "unique_visitors": "integer",
                "total_sessions": "integer",
                "bounce_rate": "number",
                "avg_session_time": "number",
                "pages_per_session": "number",
                "growth_rate": "number",
                "visitors_growth_rate": "number",
                "sessions_growth_rate": "number",
                "new_visitors": "integer",
                "returning_visitors": "integer",
                "engagement_score": "number",
                "retention_rate": "number",
            },
            errors=(401, 404),
        ),
        "Failed to get traffic summary",
    ),  # fmt: skip
    _r(
        "activity-trends",
        activity_trends,
        RouteDoc(
            "Hourly page views, visitors and visits of the last 24 hours.",
            "website.stats(range: {preset: LAST_24_HOURS}, timezone).timeseries(interval: HOUR)",
            (
                "real series (old: always empty arrays): the 24 hours ending with the current one, "
                "zero-filled, items {timestamp, value}; sessions = visits",
            ),
            (SITE, TZ, *FILTERS),
            {
                "website_id": "string",
                "trends": {"page_views": _POINT, "visitors": _POINT, "sessions": _POINT},
            },
            errors=(400, 401, 404),
        ),
        "Failed to get activity trends",
    ),  # fmt: skip
    _r(
        "daily-stats",
        daily_stats,
        RouteDoc(
            "Page views and visitors per UTC day, newest first.",
            'website.stats(range, timezone: "UTC").timeseries(interval: DAY)',
            (
                _RANGE_NOTE + "; default days=30",
                "every UTC day the range touches (N + 1 days, the "
                "first and last partial), zero-filled (old: LIMIT days, no gaps filled)",
            ),
            (
                SITE,
                Param("days", kind="integer", description="A positive integer, else 30."),
                *FILTERS,
            ),
            {
                "website_id": "string",
                "date_range": "string",
                "daily_stats": [{"date": "string", "views": "integer", "unique": "integer"}],
            },
            errors=(401, 404),
        ),
        "Failed to get daily stats",
    ),  # fmt: skip
    _r(
        "hourly-stats",
        hourly_stats,
        RouteDoc(
            "Page views and visitors per hour of the last 24 hours in a time zone.",
            "website.stats(range: {preset: LAST_24_HOURS}, timezone).timeseries(interval: HOUR)",
            (
                "the 24 hours ending with the current one, zero-filled, bucketed in the requested "
                "zone (old: UTC buckets relabelled, current hour dropped, no gaps filled)",
                "an unknown time zone is 400 naming timezone (old: silently UTC)",
                "days is ignored",
            ),
            (SITE, TZ, *FILTERS),
            {
                "website_id": "string",
                "date_range": "string",
                "timezone": "string",
                "hourly_stats": [_HOUR_ITEM],
            },
            errors=(400, 401, 404),
        ),
        "Failed to get hourly stats",
    ),  # fmt: skip
    _r(
        "live-visitors",
        live_visitors,
        RouteDoc(
            "Visitors of the last 5 minutes.",
            "website.realtime.visitors",
            (
                "counts visitors with any event (old: page views only) in the last 5 minutes of "
                "server time",
                'timestamp is the real time (old: the literal "now")',
            ),
            (SITE,),
            {"website_id": "string", "live_visitors": "integer", "timestamp": "string"},
            errors=(401, 404),
        ),
        "Failed to get live visitors",
    ),  # fmt: skip
    _r(
        "realtime",
        realtime,
        RouteDoc(
            "Realtime: visitors, page views and top pages of the last 5 minutes.",
            "website.realtime { visitors pageviews topPages(limit: 10) }",
            ("new: documented in the old README but never implemented (404)",),
            (SITE,),
            {
                "website_id": "string",
                "live_visitors": "integer",
                "page_views": "integer",
                "top_pages": [{"page": "string", "views": "integer", "unique": "integer"}],
                "timestamp": "string",
            },
            errors=(401, 404),
        ),
        "Failed to get realtime data",
    ),  # fmt: skip
]
