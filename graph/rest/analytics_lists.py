"""``GET /api/v1/analytics/{top-pages,top-referrers,top-sources,top-countries,
top-browsers,top-devices,top-os,page-utm-breakdown,custom-events}/:website_id``
(reference §3.4, §3.6, §3.10).

Each list is a ``Website.stats.breakdown`` of one metrics.md dimension, through
``resolvers.stats.load_stats``: rows by visitors descending then value ascending,
``views`` = pageviews, ``unique``/``unique_visitors`` = visitors, ``visits``/``sessions``
= visits, ``bounce_rate`` = the row's bounceRate (session dimensions only), ``count``
= custom events. Missing values are ``(none)``; no referrer is ``(direct)``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from db.queries import compat as compat_sql
from graph.http import JSONResponse
from graph.rest.analytics import DAYS, FILTERS, PREFIX, SITE
from graph.rest.common import (
    Param,
    RestRoute,
    RouteDoc,
    days_param,
    days_range,
    guarded,
    limit_param,
    load,
    query,
    query_filters,
    visible_website,
)
from resolvers.access import Principal
from resolvers.errors import UserError
from resolvers.filters import RawFilter, validate_filters
from resolvers.runtime import Runtime
from resolvers.stats_types import Breakdown, BreakdownRow, Scope, StatsKey, Summary

LIMIT = Param("limit", kind="integer", description="Rows: a positive integer, else 10; ≤ 1000.")
NONE = "(none)"
MAX_EVENTS = 50  # custom-events rows (the old LIMIT 50)


def _row(label: str, unique_key: str, r: BreakdownRow, bounce: bool) -> dict[str, Any]:
    item: dict[str, Any] = {label: r.value, "views": r.pageviews or 0, unique_key: r.visitors}
    if bounce and r.bounce_rate is not None:
        item["bounce_rate"] = r.bounce_rate
    return item


def _top(list_key: str, label: str, dimension: str, unique_key: str = "unique") -> Any:
    async def handler(request: Request, rt: Runtime, who: Principal) -> Response:
        site = await visible_website(rt, who, request.path_params["website_id"])
        days = days_param(request, rt)
        scope = Scope(site.id, days_range(days), query_filters(request))
        key = StatsKey(scope, "breakdown", dimension=dimension, limit=limit_param(request))
        found = (await load(rt, [key]))[0]
        assert isinstance(found, Breakdown)
        rows = [_row(label, unique_key, r, dimension != "PAGE") for r in found.rows]
        return JSONResponse({"website_id": site.id, "date_range": f"{days} days",
                             list_key: rows})  # fmt: skip

    handler.__doc__ = f"{list_key}: the {dimension} breakdown."
    return handler


def _utm_rows(found: Breakdown, label: str, keep_none: bool, limit: int) -> list[dict[str, Any]]:
    rows = [r for r in found.rows if keep_none or r.value != NONE][:limit]
    return [{label: r.value, "unique_visitors": r.visitors, "visits": r.visits or 0,
             "pageviews": r.pageviews or 0} for r in rows]  # fmt: skip


async def page_utm_breakdown(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    page = query(request, "page_path").strip()
    if not page:
        raise UserError("page_path query parameter is required", ["page_path"])
    filters = validate_filters([RawFilter("PAGE", "IS", [page])])
    scope = Scope(site.id, days_range(days_param(request, rt)), filters)
    limit = limit_param(request)
    dims = (("sources", "source", "UTM_SOURCE"), ("mediums", "medium", "UTM_MEDIUM"),
            ("campaigns", "campaign", "UTM_CAMPAIGN"))  # fmt: skip
    found = await load(rt, [StatsKey(scope, "breakdown", dimension=d, limit=limit)
                            for _, _, d in dims])  # fmt: skip
    out = {}
    for (key, label, _), b in zip(dims, found, strict=True):
        assert isinstance(b, Breakdown)
        out[key] = [{label: r.value, "visits": r.visits or 0, "unique_visitors": r.visitors}
                    for r in b.rows]  # fmt: skip
    return JSONResponse(out)


_UTM = (("sources", "source", "UTM_SOURCE", True), ("mediums", "medium", "UTM_MEDIUM", True),
        ("campaigns", "campaign", "UTM_CAMPAIGN", False), ("terms", "term", "UTM_TERM", False),
        ("content", "content", "UTM_CONTENT", False))  # fmt: skip


async def custom_events(request: Request, rt: Runtime, who: Principal) -> Response:
    site = await visible_website(rt, who, request.path_params["website_id"])
    days = days_param(request, rt)
    scope = Scope(site.id, days_range(days), query_filters(request))
    keys = [StatsKey(scope, "summary"),
            StatsKey(scope, "breakdown", dimension="EVENT", limit=MAX_EVENTS)]  # fmt: skip
    # one more row than shown so that dropping "(none)" still leaves 10
    keys += [StatsKey(scope, "breakdown", dimension=d, limit=11) for _, _, d, _ in _UTM]
    found = await load(rt, keys)
    summary, events = found[0], found[1]
    assert isinstance(summary, Summary) and isinstance(events, Breakdown)
    samples = await compat_sql.event_property_samples(
        rt.pools.read, site.id, scope.range.start, scope.range.end, [r.value for r in events.rows]
    )
    top = []
    for r in events.rows:
        item: dict[str, Any] = {"event_type": r.value, "count": r.events or 0}
        if r.value in samples:
            item["sample_properties"] = samples[r.value]
        top.append(item)
    utm: dict[str, Any] = {}
    for (key, label, _, keep_none), b in zip(_UTM, found[2:], strict=True):
        assert isinstance(b, Breakdown)
        utm[key] = _utm_rows(b, label, keep_none, 10)
    for item in utm["sources"]:
        item["sessions"] = item["visits"]
    return JSONResponse({
        "website_id": site.id, "date_range": f"{days} days", "top_events": top,
        "timeseries": [], "total_events": summary.events, "unique_events": events.total_rows,
        "utm_performance": utm,
    })  # fmt: skip


def _doc(list_key: str, label: str, dim: str, unique: str = "unique", extra: str = "") -> RouteDoc:
    item: dict[str, Any] = {label: "string", "views": "integer", unique: "integer"}
    if dim != "PAGE":
        item["bounce_rate?" if unique == "unique" else "bounce_rate"] = "number"
    notes = [
        "rows ordered by visitors descending, then value ascending (old: random or by "
        "views); [] when empty (old: null)",
        "days=N is [now − N days, now) in UTC",
    ]
    if extra:
        notes.append(extra)
    return RouteDoc(
        f"Top {label} values ({dim} breakdown).",
        f"website.stats(range).breakdown(dimension: {dim}, limit)", tuple(notes),
        (SITE, DAYS, LIMIT, *FILTERS),
        {"website_id": "string", "date_range": "string", list_key: [item]}, errors=(401, 404),
    )  # fmt: skip


_TOPS = (
    ("top-pages", "top_pages", "page", "PAGE", "unique", "top pages",
     "views = page views of the path, unique = its visitors; bounce_rate, avg_time and "
     "entry_rate are not sent (no per-page session metrics); paths are not normalised"),
    ("top-referrers", "top_referrers", "referrer", "REFERRER", "unique", "top referrers",
     "labelled by referrer host (lower case, no www.; (direct) for none or the own domain) "
     "instead of the old fixed labels; views = page views of those sessions"),
    ("top-sources", "top_sources", "source", "SOURCE", "unique_visitors", "top sources",
     "SOURCE dimension: utm_source, else referrer host, else (direct) (old: fixed category "
     "labels such as Organic Search)"),
    ("top-countries", "top_countries", "country", "COUNTRY", "unique", "top countries",
     "missing country is (none) (old: unknown)"),
    ("top-browsers", "top_browsers", "browser", "BROWSER", "unique", "top browsers", ""),
    ("top-devices", "top_devices", "device", "DEVICE", "unique", "top devices", ""),
    ("top-os", "top_os", "os", "OS", "unique", "top OS", ""),
)  # fmt: skip

ROUTES = [
    RestRoute("GET", f"{PREFIX}/{path}/{{website_id}}",
              guarded(f"Failed to get {what}", _top(key, label, dim, uniq)),
              _doc(key, label, dim, uniq, extra))
    for path, key, label, dim, uniq, what, extra in _TOPS
]  # fmt: skip
_UTM_ITEM = {"visits": "integer", "unique_visitors": "integer"}
ROUTES += [
    RestRoute("GET", f"{PREFIX}/page-utm-breakdown/{{website_id}}",
              guarded("Failed to get page UTM breakdown", page_utm_breakdown), RouteDoc(
        "UTM sources, mediums and campaigns of the sessions that viewed one page.",
        "website.stats(range, filters: [{dimension: PAGE, operator: IS, values: [page_path]}])"
        ".breakdown(dimension: UTM_SOURCE | UTM_MEDIUM | UTM_CAMPAIGN)",
        ("exact path match (old: also page?query, LIKE wildcards live)", "session UTM (first "
         "event); missing is (none) (old: direct / none); unique_visitors are distinct, not "
         "summed; visits = visits (sessions), not page views", "ordered by visitors, ≤ limit"),
        (SITE, Param("page_path", description="The page path (required).", required=True),
         DAYS, LIMIT),
        {"sources": [{"source": "string", **_UTM_ITEM}],
         "mediums": [{"medium": "string", **_UTM_ITEM}],
         "campaigns": [{"campaign": "string", **_UTM_ITEM}]}, errors=(400, 401, 404))),
    RestRoute("GET", f"{PREFIX}/custom-events/{{website_id}}",
              guarded("Failed to get custom events", custom_events), RouteDoc(
        "Custom events by name, with UTM performance.",
        "website.stats(range) { summary { events } breakdown(dimension: EVENT, limit: 50) "
        "breakdown(dimension: UTM_SOURCE …) }",
        ("read from the events table (every stored custom event), grouped by event name "
         "(old: one row per distinct properties object, by ingestion time)",
         "total_events = all custom events of the range; unique_events = distinct names",
         "sample_properties = the latest event's properties; common_properties and "
         "sample_event are not sent", "timeseries stays []",
         "utm_performance: session UTM; visits = sessions = visits; missing source/medium "
         "is (none); rows ordered by visitors"),
        (SITE, DAYS, *FILTERS),
        {"website_id": "string", "date_range": "string",
         "top_events": [{"event_type": "string", "count": "integer",
                         "sample_properties?": "object"}],
         "timeseries": [{}], "total_events": "integer", "unique_events": "integer",
         "utm_performance": {
             "sources": [{"source": "string", "unique_visitors": "integer",
                          "visits": "integer", "pageviews": "integer", "sessions": "integer"}],
             **{k: [{label: "string", "unique_visitors": "integer", "visits": "integer",
                     "pageviews": "integer"}] for k, label, _, _ in _UTM[1:]}}},
        errors=(401, 404))),
]  # fmt: skip
