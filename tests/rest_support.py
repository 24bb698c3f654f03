"""Helpers of the REST compatibility tests: the old service's JSON shapes (written from
seentics-reference.md §3, independently of graph/rest), a recursive exact-key check,
and the worked example of reference §12 as import payloads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

# --- old shapes: {key: shape}; "key?" = may be absent; [item] = array of item ------------
N, S, B, OBJ = "number", "string", "boolean", "object"
STAT = {"views": N, "unique": N, "bounce_rate?": N}
OLD: dict[str, Any] = {
    "dashboard": {"website_id": S, "date_range": S, "total_visitors": N, "unique_visitors": N,
                  "live_visitors": N, "page_views": N, "session_duration": N, "bounce_rate": N,
                  "comparison?": {f"{k}?": N for k in (
                      "total_visitor_change", "visitor_change", "pageview_change",
                      "session_change", "bounce_change", "duration_change")}},
    "top-pages": {"website_id": S, "date_range": S, "top_pages": [
        {"page": S, "views": N, "unique": N, "bounce_rate?": N, "avg_time?": N,
         "entry_rate?": N}]},
    "top-referrers": {"website_id": S, "date_range": S, "top_referrers": [
        {"referrer": S, **STAT}]},
    "top-sources": {"website_id": S, "date_range": S, "top_sources": [
        {"source": S, "views": N, "unique_visitors": N, "bounce_rate": N}]},
    "top-countries": {"website_id": S, "date_range": S, "top_countries": [{"country": S, **STAT}]},
    "top-browsers": {"website_id": S, "date_range": S, "top_browsers": [{"browser": S, **STAT}]},
    "top-devices": {"website_id": S, "date_range": S, "top_devices": [{"device": S, **STAT}]},
    "top-os": {"website_id": S, "date_range": S, "top_os": [{"os": S, **STAT}]},
    "page-utm-breakdown": {k: [{label: S, "visits": N, "unique_visitors": N}] for k, label in (
        ("sources", "source"), ("mediums", "medium"), ("campaigns", "campaign"))},
    "traffic-summary": {k: N for k in (
        "total_page_views", "total_visitors", "unique_visitors", "total_sessions", "bounce_rate",
        "avg_session_time", "pages_per_session", "growth_rate", "visitors_growth_rate",
        "sessions_growth_rate", "new_visitors", "returning_visitors", "engagement_score",
        "retention_rate")},
    "activity-trends": {"website_id": S, "trends": {
        "page_views": [{"timestamp": S, "value": N}], "visitors": [{"timestamp": S, "value": N}],
        "sessions": [{"timestamp": S, "value": N}]}},
    "daily-stats": {"website_id": S, "date_range": S, "daily_stats": [
        {"date": S, "views": N, "unique": N}]},
    "hourly-stats": {"website_id": S, "date_range": S, "timezone": S, "hourly_stats": [
        {"hour": N, "timestamp": S, "views": N, "unique": N, "hour_label": S}]},
    "custom-events": {"website_id": S, "date_range": S, "top_events": [
        {"event_type": S, "count": N, "common_properties?": OBJ, "sample_properties?": OBJ,
         "sample_event?": OBJ}], "timeseries": [OBJ], "total_events": N, "unique_events": N,
        "utm_performance?": {
            "sources": [{"source": S, "unique_visitors": N, "visits": N, "pageviews": N,
                         "sessions": N}],
            **{k: [{label: S, "unique_visitors": N, "visits": N, "pageviews": N}]
               for k, label in (("mediums", "medium"), ("campaigns", "campaign"),
                                ("terms", "term"), ("content", "content"))}}},
    "live-visitors": {"website_id": S, "live_visitors": N, "timestamp": S},
}  # fmt: skip
STEP = {"id": S, "name": S, "type": S, "condition": {"page?": S, "event?": S, "custom?": S},
        "order": N}  # fmt: skip
FUNNEL = {"id": S, "name": S, "description?": S, "website_id": S, "user_id?": S,
          "steps": [STEP], "is_active": B, "created_at": S, "updated_at": S}  # fmt: skip
ANALYTICS = {"funnel_id": S, "website_id": S, "date": S, "total_starts": N,
             "total_conversions": N, "conversion_rate": N, "avg_time_to_convert?": N,
             "avg_time_to_abandon?": N, "drop_off_rate": N, "abandonment_rate": N}  # fmt: skip
DETAILED = {"status": S, "data": {
    "funnel_id": S, "website_id": S, "date_range": N,
    "step_analytics": [{"step_id": S, "step_name": S, "step_order": N, "visitors_reached": N,
                        "conversion_rate": N, "drop_off_rate": N, "avg_time_on_step?": N}],
    "daily_performance": [{"date": S, "total_starts": N, "conversions": N,
                           "conversion_rate": N}],
    "cohort_data": [{"cohort_date": S, "cohort_size": N, "conversions": N,
                     "conversion_rate": N, "avg_time_to_convert": N}]}}  # fmt: skip
COMPARE = {"status": S, "data": [{"funnel_id": S, "funnel_name": S, "total_starts": N,
                                  "total_conversions": N, "conversion_rate": N,
                                  "drop_off_rate": N, "avg_time_to_convert?": N,
                                  "performance_score": N}]}  # fmt: skip
ADMIN_FUNNEL_STATS = {"total": N, "recent": [FUNNEL], "active": N}
ADMIN_ANALYTICS = {"total_events": N, "events_today": N, "unique_visitors_today": N,
                   "total_pageviews": N}  # fmt: skip
ADMIN_FUNNELS = {"funnels": [FUNNEL], "pagination": {
    "current_page": N, "total_pages": N, "total_funnels": N, "has_next_page": B,
    "has_prev_page": B}}  # fmt: skip
_TYPES = {N: (int, float), S: (str,), B: (bool,), OBJ: (dict,)}


def check_shape(value: Any, shape: Any, where: str = "$") -> None:
    """``value`` has exactly the shape's keys (optional ones may be absent), recursively,
    with JSON types as declared; lists are arrays (never null)."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        required = {k for k in shape if not k.endswith("?")}
        allowed = {k.rstrip("?") for k in shape}
        assert required <= value.keys(), f"{where}: missing {sorted(required - value.keys())}"
        assert value.keys() <= allowed, f"{where}: unexpected {sorted(value.keys() - allowed)}"
        for key, sub in shape.items():
            if key.rstrip("?") in value:
                check_shape(value[key.rstrip("?")], sub, f"{where}.{key.rstrip('?')}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            check_shape(item, shape[0], f"{where}[{i}]")
    else:
        ok = isinstance(value, _TYPES[shape]) and not (shape == N and isinstance(value, bool))
        assert ok, f"{where}: expected {shape}, got {value!r}"


def _event(visitor: str, session: str, page: str, ts: datetime, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "visitor_id": visitor, "session_id": session,
            "event_type": "pageview", "page": page, "timestamp": ts.isoformat(), **extra}  # fmt: skip


def worked_example(now: datetime, tag: str) -> list[dict[str, Any]]:
    """Reference §12 fixture (all page views); visitor/session ids prefixed by ``tag``."""
    m, h, d = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    a = {"country": "US", "browser": "Chrome", "device": "desktop", "os": "Windows"}
    c = {"browser": "Safari", "device": "desktop", "os": "macOS"}
    t = tag
    return [
        _event(f"{t}A", f"{t}s1", "/home", now - 60 * m,
               referrer="https://www.google.com/search?q=x", **a),
        _event(f"{t}A", f"{t}s1", "/pricing", now - 58 * m, **a),
        _event(f"{t}A", f"{t}s1", "/signup", now - 50 * m, **a),
        _event(f"{t}A", f"{t}s2", "/home", now - 2 * m, **a),
        _event(f"{t}B", f"{t}s3", "/blog", now - 3 * h, referrer="https://google.com/?utm_source=google",
               country="DE", browser="Firefox", device="mobile", os="Android",
               utm_source="google", utm_medium="cpc", utm_campaign="spring"),
        _event(f"{t}C", f"{t}s4", "/home", now - 2 * d, referrer="https://t.co/abc", **c),
        _event(f"{t}C", f"{t}s4", "/pricing", now - 2 * d + 40 * m, **c),
        _event(f"{t}D", f"{t}s5", "/blog/", now - 10 * d, country="FR", browser="Chrome",
               device="desktop", os="Linux"),
    ]  # fmt: skip
