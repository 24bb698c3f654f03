"""Admin routes, /openapi.json (every registered REST route, and only those), the
credentials rules of every protected route, and the old dashboard's call sequence
(frontend analytics-api.ts) after tracker.js traffic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.routing import Route

from graph.rest.routes import DOCS
from graph.settings import Settings
from tests.conftest import API_KEY, make_website, token
from tests.rest_support import (
    ADMIN_ANALYTICS,
    ADMIN_FUNNEL_STATS,
    ADMIN_FUNNELS,
    DETAILED,
    FUNNEL,
    OLD,
    check_shape,
)

KEY = {"X-API-Key": API_KEY}
STEPS = [{"name": n, "type": "page", "condition": {"page": p}} for n, p in
         (("Home", "/"), ("Pricing", "/pricing"))]  # fmt: skip


async def test_admin_routes(client: httpx.AsyncClient, admin_headers: dict[str, str],
                            settings: Settings) -> None:  # fmt: skip
    site = await make_website(client, admin_headers)
    ids = []
    for i in range(3):
        r = await client.post("/api/v1/funnels/", headers=KEY, json={
            "name": f"F{i}", "website_id": site, "steps": STEPS, "is_active": i != 1})  # fmt: skip
        ids.append(r.json()["data"]["id"])
    stats = (await client.get("/api/v1/admin/funnels/stats", headers=KEY)).json()
    check_shape(stats, ADMIN_FUNNEL_STATS)
    assert stats["total"] >= 3 and stats["active"] >= 2 and len(stats["recent"]) <= 10
    mine = {"Authorization": f"Bearer {token(settings, [site], 'read')}"}
    own = (await client.get("/api/v1/admin/funnels/stats/", headers=mine)).json()
    assert (own["total"], own["active"]) == (3, 2)
    assert [f["id"] for f in own["recent"]] == ids[::-1]
    page = (await client.get("/api/v1/admin/funnels", params={"page": 2, "limit": 2},
                             headers=mine)).json()  # fmt: skip
    check_shape(page, ADMIN_FUNNELS)
    assert [f["id"] for f in page["funnels"]] == [ids[0]]
    assert page["pagination"] == {"current_page": 2, "total_pages": 2, "total_funnels": 3,
                                  "has_next_page": False, "has_prev_page": True}  # fmt: skip
    fallback = (await client.get("/api/v1/admin/funnels", params={"limit": 0},
                                 headers=mine)).json()  # fmt: skip
    assert fallback["pagination"]["current_page"] == 1 and len(fallback["funnels"]) == 3
    now = datetime.now(UTC).isoformat()
    batch = {"siteId": site, "events": [
        {"website_id": site, "visitor_id": "v", "session_id": "s", "page": "/", "timestamp": now},
        {"website_id": site, "visitor_id": "v", "session_id": "s", "page": "/", "timestamp": now,
         "event_type": "signup"}]}  # fmt: skip
    assert (await client.post("/api/v1/analytics/event/batch", json=batch)).status_code == 201
    counts = (await client.get("/api/v1/admin/analytics/stats", headers=mine)).json()
    check_shape(counts, ADMIN_ANALYTICS)
    assert counts == {"total_events": 2, "events_today": 2, "unique_visitors_today": 1,
                      "total_pageviews": 1}  # fmt: skip
    everyone = (await client.get("/api/v1/admin/analytics/stats", headers=KEY)).json()
    assert everyone["total_events"] >= 2 and everyone["total_pageviews"] >= 1
    assert (await client.get("/api/v1/admin/analytics/stats")).status_code == 401


def _registered(app: Any) -> set[tuple[str, str]]:
    return {(m, r.path) for r in app.routes if isinstance(r, Route) and r.path != "/graphql"
            for m in (r.methods or set()) - {"HEAD"}}  # fmt: skip


async def test_openapi_lists_every_rest_route(client: httpx.AsyncClient, app: Any) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == _registered(app)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)
            names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    for needed in ("/api/v1/analytics/event/batch", "/api/v1/funnels/track", "/health",
                   "/ready", "/metrics", "/api/v1/privacy/cleanup",
                   "/api/v1/analytics/privacy/export/{user_id}", "/openapi.json",
                   "/api/v1/analytics/dashboard/{website_id}/"):  # fmt: skip
        assert needed in doc["paths"], needed
    dash = doc["paths"]["/api/v1/analytics/dashboard/{website_id}"]["get"]
    props = dash["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert set(props) == {k.rstrip("?") for k in OLD["dashboard"]}


async def test_protected_routes_need_credentials(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    site = await make_website(client, admin_headers)
    other = {"Authorization": f"Bearer {token(settings, ['someone-else'], 'admin')}"}
    checked = 0
    for (method, path), doc in DOCS.items():
        url = path.replace("{website_id}", site).replace(
            "{funnel_id}", "00000000-0000-4000-8000-000000000000")  # fmt: skip
        r = await client.request(method, url, params={"website_id": site})
        if doc.public:
            assert r.status_code == 200, (method, path, r.text)
            continue
        assert (r.status_code, r.json()) == (401, {"error": "Missing API key"}), (method, path)
        r = await client.request(method, url, params={"website_id": site},
                                 headers={"Authorization": "Bearer nonsense"})  # fmt: skip
        assert r.status_code == 401 and "error" in r.json()
        if "{website_id}" in path or path == "/api/v1/funnels":
            r = await client.request(method, url, params={"website_id": site}, headers=other,
                                     json={"name": "x", "website_id": site, "steps": STEPS})  # fmt: skip
            assert r.status_code == 404 and "error" in r.json(), (method, path, r.text)
        checked += 1
    assert checked >= 25


async def test_dashboard_call_sequence(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """tracker.js traffic (a text/plain beacon), then what the old dashboard requests."""
    site = await make_website(client, admin_headers, domain="blog.example")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"
    events = [{"website_id": site, "visitor_id": "lq3x9k2a7b1c", "session_id": "lq3x9k2s8d7e",
               "event_type": t, "page": "/post/1", "referrer": "https://news.ycombinator.com/",
               "user_agent": ua, "time_on_page": 0, "timestamp": now, "utm_source": None,
               "utm_medium": None, "utm_campaign": None, "utm_term": None, "utm_content": None,
               **({"properties": {"depth": 50}} if t != "pageview" else {})}
              for t in ("pageview", "scroll")]  # fmt: skip
    body = orjson.dumps({"siteId": site, "domain": "blog.example", "events": events})
    r = await client.post("/api/v1/analytics/event/batch", content=body,
                          headers={"content-type": "text/plain;charset=UTF-8"})  # fmt: skip
    assert r.status_code == 201 and r.json()["events_count"] == 2
    a = "/api/v1/analytics"
    calls = [
        (f"{a}/dashboard/{site}?days=7", OLD["dashboard"]),
        (f"{a}/dashboard/{site}?days=7&country=US&device=mobile", OLD["dashboard"]),
        *((f"{a}/{n}/{site}?days=7", OLD[n]) for n in (
            "top-pages", "top-referrers", "top-countries", "top-browsers", "top-devices",
            "top-os", "traffic-summary")),
        (f"{a}/hourly-stats/{site}?days=1", OLD["hourly-stats"]),
        (f"{a}/activity-trends/{site}", OLD["activity-trends"]),
        (f"{a}/daily-stats/{site}?days=30", OLD["daily-stats"]),
        (f"{a}/custom-events/{site}?days=30", OLD["custom-events"]),
        (f"/api/v1/funnels/?website_id={site}", {"success": "boolean", "data": [FUNNEL]}),
    ]  # fmt: skip
    answers = {}
    for url, shape in calls:
        r = await client.get(url, headers=KEY)
        assert r.status_code == 200, (url, r.text)
        check_shape(r.json(), shape)
        answers.setdefault(url.split("/")[4], r.json())
    dash = answers["dashboard"]
    assert (dash["page_views"], dash["unique_visitors"], dash["live_visitors"]) == (1, 1, 1)
    assert answers["top-referrers"]["top_referrers"][0]["referrer"] == "news.ycombinator.com"
    assert answers["top-devices"]["top_devices"][0]["device"] == "mobile"
    assert answers["custom-events"]["top_events"] == [
        {"event_type": "scroll", "count": 1, "sample_properties": {"depth": 50}}]  # fmt: skip
    made = await client.post("/api/v1/funnels/", headers=KEY, json={
        "name": "Read", "website_id": site, "steps": STEPS, "is_active": True})  # fmt: skip
    fid = made.json()["data"]["id"]
    for url in (f"/api/v1/funnels/{fid}", f"/api/v1/funnels/{fid}/analytics?days=7",
                f"/api/v1/funnels/{fid}/analytics/detailed?days=7"):  # fmt: skip
        assert (await client.get(url, headers=KEY)).status_code == 200
    detailed = (await client.get(f"/api/v1/funnels/{fid}/analytics/detailed", headers=KEY)).json()
    check_shape(detailed, DETAILED)


async def test_admin_funnels_far_pages(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    """Any page the old service parsed answers 200 (a page past the end is empty, not a
    500 from an offset PostgreSQL cannot hold); a page Go's ``strconv.Atoi`` cannot
    parse (over 64 bits) is the default page 1."""
    site = await make_website(client, admin_headers)
    r = await client.post("/api/v1/funnels/", headers=KEY, json={
        "name": "F", "website_id": site, "steps": STEPS})  # fmt: skip
    fid = r.json()["data"]["id"]
    mine = {"Authorization": f"Bearer {token(settings, [site], 'read')}"}
    far = 999_999_999_999_999_999
    r = await client.get("/api/v1/admin/funnels", params={"page": far}, headers=mine)
    assert (r.status_code, r.json()) == (200, {"funnels": [], "pagination": {
        "current_page": far, "total_pages": 1, "total_funnels": 1, "has_next_page": False,
        "has_prev_page": True}})  # fmt: skip
    r = await client.get("/api/v1/admin/funnels", params={"page": "9" * 20}, headers=mine)
    assert r.status_code == 200
    assert [f["id"] for f in r.json()["funnels"]] == [fid]
    assert r.json()["pagination"]["current_page"] == 1
