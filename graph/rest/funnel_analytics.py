"""Funnel reports over REST (reference §3.12, §7.3): ``GET /api/v1/funnels/:id/analytics``,
``…/analytics/detailed`` and ``POST /api/v1/funnels/compare?website_id=``.

Computed from events by ``resolvers.funnel_report`` (GraphQL ``Funnel.report`` /
``compareFunnels``) over [now − days, now) in UTC, under the old field names:
``total_starts`` = entered, ``total_conversions`` = converted, ``conversion_rate``,
``drop_off_rate`` = ``abandonment_rate`` = 100 − conversion_rate (0 when nobody
entered), ``avg_time_to_convert`` = mean time to convert, whole seconds (omitted when
nobody converted). Per step i of n: ``visitors_reached`` = reached(i),
``conversion_rate`` = 100 × reached(i+1) / reached(i) (last step: 100 × converted /
reached(n)), 0 when reached(i) = 0; ``drop_off_rate`` = 100 − conversion_rate.
``daily_performance``: every UTC day of the range (subjects by the day of their best
attempt's step 1). ``cohort_data``: per UTC day with entries, the funnel over that day
(the cohort = subjects with a step-1 event that day). ``performance_score`` = 0.5 ×
conversion_rate + 0.3 × (100 − drop_off_rate) + time score (20 when the mean time to
convert ≤ 10 min, (60 − minutes) / 50 × 20 up to 60 min, else 0).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from db.queries.funnels import FunnelRow
from graph.http import JSONResponse, error
from graph.rest.common import (
    Param,
    RestRoute,
    RouteDoc,
    days_param,
    days_range,
    guarded,
    query,
    visible_website,
)
from graph.rest.funnels import FID, PREFIX, BadFunnel, json_object, visible_funnel
from resolvers import funnel_report as report_ops
from resolvers import funnels as ops
from resolvers.access import Principal
from resolvers.errors import UserError
from resolvers.funnel_report import MAX_COMPARE, ReportResult
from resolvers.runtime import Runtime

COHORT_CONCURRENCY = 4  # per-day reports run at once


def basic(res: ReportResult) -> dict[str, Any]:
    """total_starts, total_conversions, conversion_rate, avg_time_to_convert?, drop_off_rate."""
    out: dict[str, Any] = {"total_starts": res.entered, "total_conversions": res.converted,
                           "conversion_rate": res.conversion_rate}  # fmt: skip
    if res.time_to_convert is not None:
        out["avg_time_to_convert"] = int(res.time_to_convert.mean)
    out["drop_off_rate"] = 100.0 - res.conversion_rate if res.entered else 0.0
    return out


def performance_score(numbers: dict[str, Any]) -> float:
    """Reference §7.3: 0.5 × conversion + 0.3 × (100 − drop-off) + time score."""
    score = 0.5 * float(numbers["conversion_rate"]) + 0.3 * (
        100.0 - float(numbers["drop_off_rate"])
    )
    seconds = numbers.get("avg_time_to_convert")
    if seconds is not None:
        minutes = seconds / 60.0
        if minutes <= 10:
            score += 20.0
        elif minutes <= 60:
            score += (60.0 - minutes) / 50.0 * 100.0 * 0.2
    return score


async def _report(rt: Runtime, row: FunnelRow, days: int) -> ReportResult:
    rng = days_range(days)
    return await report_ops.report(rt, row, rng.start, rng.end, "UTC")


async def analytics(request: Request, rt: Runtime, who: Principal) -> Response:
    row = await visible_funnel(rt, who, request)
    res = await _report(rt, row, days_param(request, rt))
    numbers = basic(res)
    return JSONResponse({"funnel_id": row.id, "website_id": row.website_id,
                         "date": datetime.now(UTC).date().isoformat(), **numbers,
                         "abandonment_rate": numbers["drop_off_rate"]})  # fmt: skip


def _steps(row: FunnelRow, res: ReportResult) -> list[dict[str, Any]]:
    reached = [s.reached for s in res.steps]
    out = []
    for i, step in enumerate(res.steps):
        following = reached[i + 1] if i + 1 < len(reached) else res.converted
        rate = 100.0 * following / reached[i] if reached[i] else 0.0
        out.append({"step_id": str(i + 1), "step_name": step.name, "step_order": i + 1,
                    "visitors_reached": reached[i], "conversion_rate": rate,
                    "drop_off_rate": 100.0 - rate})  # fmt: skip
    return out


async def _cohorts(
    rt: Runtime, row: FunnelRow, start: datetime, end: datetime, days: list[Any]
) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(COHORT_CONCURRENCY)

    async def one(day: Any) -> ReportResult:
        lo = max(start, datetime.combine(day, time(0), tzinfo=UTC))
        hi = min(end, datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))
        async with gate:
            return await report_ops.report(rt, row, lo, hi, "UTC")

    found = await asyncio.gather(*(one(d) for d in days))
    out = []
    for day, res in zip(days, found, strict=True):
        if not res.entered:
            continue
        ttc = res.time_to_convert
        out.append({"cohort_date": day.isoformat(), "cohort_size": res.entered,
                    "conversions": res.converted, "conversion_rate": res.conversion_rate,
                    "avg_time_to_convert": int(ttc.mean) if ttc else 0})  # fmt: skip
    return out


async def detailed(request: Request, rt: Runtime, who: Principal) -> Response:
    row = await visible_funnel(rt, who, request)
    days = days_param(request, rt)
    rng = days_range(days)
    res, daily = await asyncio.gather(
        report_ops.report(rt, row, rng.start, rng.end, "UTC"),
        report_ops.daily(rt, row, rng.start, rng.end, "UTC"),
    )
    busy = [d.day for d in reversed(daily) if d.entered]
    cohorts = await _cohorts(rt, row, rng.start, rng.end, busy)
    perf = [{"date": d.day.isoformat(), "total_starts": d.entered, "conversions": d.converted,
             "conversion_rate": d.conversion_rate} for d in reversed(daily)]  # fmt: skip
    return JSONResponse({"status": "success", "data": {
        "funnel_id": row.id, "website_id": row.website_id, "step_analytics": _steps(row, res),
        "daily_performance": perf, "cohort_data": cohorts, "date_range": days}})  # fmt: skip


async def compare(request: Request, rt: Runtime, who: Principal) -> Response:
    site_id = query(request, "website_id").strip()
    if not site_id:
        raise UserError("website_id is required", ["website_id"])
    site = await visible_website(rt, who, site_id)
    try:
        body = await json_object(request, "body")
    except BadFunnel as exc:
        return error(400, "Invalid comparison request", details=exc.message)
    ids = body.get("funnel_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return error(400, "Invalid comparison request",
                     details="funnel_ids: an array of funnel ids is required")  # fmt: skip
    if len(ids) > MAX_COMPARE:
        return error(400, "Invalid comparison request",
                     details=f"funnel_ids: at most {MAX_COMPARE}")  # fmt: skip
    raw_days = body.get("date_range")
    days = raw_days if isinstance(raw_days, int) and not isinstance(raw_days, bool) else 0
    days = min(days if days > 0 else 7, rt.retention_days)
    rows = [r for r in await ops.get_many_visible(rt, who, list(dict.fromkeys(ids)))
            if r is not None and r.website_id == site.id]  # fmt: skip
    reports = await asyncio.gather(*(_report(rt, r, days) for r in rows))
    items = []
    for row, res in zip(rows, reports, strict=True):
        numbers = basic(res)
        items.append({"funnel_id": row.id, "funnel_name": row.name, **numbers,
                      "performance_score": performance_score(numbers)})  # fmt: skip
    items.sort(key=lambda item: -item["performance_score"])  # stable: ties keep id order
    return JSONResponse({"status": "success", "data": items})


NUMBERS = {"total_starts": "integer", "total_conversions": "integer",
           "conversion_rate": "number", "avg_time_to_convert?": "integer",
           "drop_off_rate": "number"}  # fmt: skip
DAYS = Param("days", kind="integer", description="[now − days, now) in UTC; positive, else 7.")
_DEF = ("computed from events by the metrics.md funnel rules (old: from tracker rows only); "
        "total_starts = visitors who reached step 1 (old: any row)")  # fmt: skip

ROUTES = [
    RestRoute("POST", f"{PREFIX}/compare", guarded("Failed to compare funnels", compare),
              RouteDoc(
        "Several funnels of one website side by side, by performance score.",
        "compareFunnels(ids, range)",
        (_DEF, "funnels of other websites or tenants, and unknown ids, are skipped; unknown "
         "website → 404; at most 20 ids", "stable sort by performance_score descending"),
        (Param("website_id", description="The website (required).", required=True),),
        {"status": "string", "data": [{"funnel_id": "string", "funnel_name": "string",
                                        **NUMBERS, "performance_score": "number"}]},
        body={"funnel_ids": ["string"], "date_range?": "integer", "metrics?": ["string"]},
        errors=(400, 401, 404))),
    RestRoute("GET", f"{PREFIX}/{{funnel_id}}/analytics",
              guarded("Failed to get funnel analytics", analytics), RouteDoc(
        "Funnel conversion over the last N days.",
        "funnel(id).report(range) { entered converted conversionRate timeToConvert }",
        (_DEF, "unknown funnel → 404 (old: 200 with zeros)", "avg_time_to_abandon is not sent",
         "date = today (UTC)"),
        (FID, DAYS),
        {"funnel_id": "string", "website_id": "string", "date": "string", **NUMBERS,
         "abandonment_rate": "number"}, errors=(400, 401, 404))),
    RestRoute("GET", f"{PREFIX}/{{funnel_id}}/analytics/detailed",
              guarded("Failed to get detailed funnel analytics", detailed), RouteDoc(
        "Per-step, per-day and per-cohort funnel analytics.",
        "funnel(id).report(range) { steps { reached } daily { … } }",
        (_DEF, "step conversion never exceeds 100; avg_time_on_step is not sent",
         "daily_performance lists every UTC day of the range (old: days with rows only)",
         "unknown funnel → 404 (old: 500)"),
        (FID, DAYS),
        {"status": "string", "data": {
            "funnel_id": "string", "website_id": "string",
            "step_analytics": [{"step_id": "string", "step_name": "string",
                                "step_order": "integer", "visitors_reached": "integer",
                                "conversion_rate": "number", "drop_off_rate": "number"}],
            "daily_performance": [{"date": "string", "total_starts": "integer",
                                   "conversions": "integer", "conversion_rate": "number"}],
            "cohort_data": [{"cohort_date": "string", "cohort_size": "integer",
                             "conversions": "integer", "conversion_rate": "number",
                             "avg_time_to_convert": "integer"}],
            "date_range": "integer"}}, errors=(400, 401, 404))),
]  # fmt: skip
