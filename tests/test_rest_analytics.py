"""REST analytics routes (reference §3.4–3.11): exact old key sets, parameters and
errors, the §12 worked example under metrics.md, and equality with GraphQL numbers
for the same website and range (days=N ↔ {from: now − N days, to: now}, UTC)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, make_website
from tests.rest_support import OLD, check_shape, worked_example
from tests.stats_support import close, dashboard_query, import_events, stats

KEY = {"X-API-Key": API_KEY}
BASE = "/api/v1/analytics"
LISTS = {  # route → (list key, label, GraphQL dimension, unique key)
    "top-pages": ("top_pages", "page", "PAGE", "unique"),
    "top-referrers": ("top_referrers", "referrer", "REFERRER", "unique"),
    "top-sources": ("top_sources", "source", "SOURCE", "unique_visitors"),
    "top-countries": ("top_countries", "country", "COUNTRY", "unique"),
    "top-browsers": ("top_browsers", "browser", "BROWSER", "unique"),
    "top-devices": ("top_devices", "device", "DEVICE", "unique"),
    "top-os": ("top_os", "os", "OS", "unique"),
}


@pytest.fixture(scope="module")
async def site(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    site_id = await make_website(client, admin_headers, domain="example.com")
    now = datetime.now(UTC)
    events = worked_example(now, "w")
    await import_events(client, admin_headers, site_id, events)
    return {"id": site_id, "now": now, "events": events}


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(f"{BASE}/{path}", params=params, headers=KEY)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


ROUTES = [*LISTS, "dashboard", "traffic-summary", "activity-trends", "daily-stats",
          "hourly-stats", "custom-events", "live-visitors"]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
async def test_old_keys_exactly(
    client: httpx.AsyncClient, site: dict[str, Any], route: str
) -> None:
    body = await _get(client, f"{route}/{site['id']}")
    check_shape(body, OLD[route])
    if "website_id" in OLD[route]:
        assert body["website_id"] == site["id"]
    r = await client.get(f"{BASE}/{route}/{site['id']}/", headers=KEY)  # trailing slash
    assert r.status_code == 200 and r.json().keys() == body.keys()
    for key in (None, "wrong"):
        r = await client.get(f"{BASE}/{route}/{site['id']}",
                             headers={"X-API-Key": key} if key else {})  # fmt: skip
        assert r.status_code == 401
        assert r.json() == {"error": "Missing API key" if key is None else "Invalid API key"}
    r = await client.get(f"{BASE}/{route}/no-such-site", headers=KEY)
    assert (r.status_code, r.json()["error"]) == (404, "Website not found")


async def test_page_utm_breakdown(client: httpx.AsyncClient, site: dict[str, Any]) -> None:
    r = await client.get(f"{BASE}/page-utm-breakdown/{site['id']}", headers=KEY)
    assert (r.status_code, r.json()["error"]) == (400, "page_path query parameter is required")
    body = await _get(client, f"page-utm-breakdown/{site['id']}", page_path="/blog")
    check_shape(body, OLD["page-utm-breakdown"])
    assert body == {"sources": [{"source": "google", "visits": 1, "unique_visitors": 1}],
                    "mediums": [{"medium": "cpc", "visits": 1, "unique_visitors": 1}],
                    "campaigns": [{"campaign": "spring", "visits": 1, "unique_visitors": 1}]}  # fmt: skip
    empty = await _get(client, f"page-utm-breakdown/{site['id']}", page_path="/nothing")
    assert empty == {"sources": [], "mediums": [], "campaigns": []}


async def test_worked_example(client: httpx.AsyncClient, site: dict[str, Any]) -> None:
    """Reference §12 under metrics.md: visits-based totals, session durations (not
    page-view weighted), deterministic order, host-labelled referrers."""
    sid = site["id"]
    dash = await _get(client, f"dashboard/{sid}")
    assert {k: dash[k] for k in ("date_range", "page_views", "total_visitors", "unique_visitors",
                                 "live_visitors", "bounce_rate")} == {
        "date_range": "7 days", "page_views": 7, "total_visitors": 4, "unique_visitors": 3,
        "live_visitors": 1, "bounce_rate": 50}  # fmt: skip
    close(dash["session_duration"], (600 + 0 + 0 + 2400) / 4, "session_duration")
    # previous week: D's single bounce → changes against 1 page view, 1 visitor, 1 visit
    assert dash["comparison"] == {"total_visitor_change": 300, "visitor_change": 200,
                                  "pageview_change": 600, "session_change": 300,
                                  "bounce_change": -50}  # fmt: skip
    ts = await _get(client, f"traffic-summary/{sid}")
    assert (ts["total_page_views"], ts["total_visitors"], ts["total_sessions"],
            ts["unique_visitors"], ts["new_visitors"], ts["returning_visitors"]) == (7, 4, 4, 3, 3, 0)  # fmt: skip
    close(ts["pages_per_session"], 1.75, "pages_per_session")
    close(ts["avg_session_time"], 750.0, "avg_session_time")
    assert (ts["growth_rate"], ts["visitors_growth_rate"], ts["sessions_growth_rate"]) == (
        600,
        200,
        300,
    )
    assert (ts["engagement_score"], ts["retention_rate"]) == (50, 0)

    def rows(
        body: dict[str, Any], key: str, label: str, uniq: str = "unique"
    ) -> list[tuple[Any, ...]]:
        return [(r[label], r["views"], r[uniq], r.get("bounce_rate")) for r in body[key]]

    assert rows(await _get(client, f"top-pages/{sid}"), "top_pages", "page") == [
        ("/home", 3, 2, None), ("/pricing", 2, 2, None), ("/blog", 1, 1, None),
        ("/signup", 1, 1, None)]  # fmt: skip
    assert rows(await _get(client, f"top-referrers/{sid}"), "top_referrers", "referrer") == [
        ("google.com", 4, 2, 50), ("(direct)", 1, 1, 100), ("t.co", 2, 1, 0)]  # fmt: skip
    assert rows(await _get(client, f"top-sources/{sid}"), "top_sources", "source",
                "unique_visitors") == [("(direct)", 1, 1, 100), ("google", 1, 1, 100),
                                       ("google.com", 3, 1, 0), ("t.co", 2, 1, 0)]  # fmt: skip
    assert rows(await _get(client, f"top-countries/{sid}"), "top_countries", "country") == [
        ("(none)", 2, 1, 0), ("DE", 1, 1, 100), ("US", 4, 1, 50)]  # fmt: skip
    assert rows(await _get(client, f"top-devices/{sid}"), "top_devices", "device") == [
        ("desktop", 6, 2, pytest.approx(100 / 3)), ("mobile", 1, 1, 100)]  # fmt: skip
    assert rows(await _get(client, f"top-os/{sid}"), "top_os", "os") == [
        ("Android", 1, 1, 100), ("Windows", 4, 1, 50), ("macOS", 2, 1, 0)]  # fmt: skip
    limited = await _get(client, f"top-pages/{sid}", limit=2)
    assert [r["page"] for r in limited["top_pages"]] == ["/home", "/pricing"]

    daily = await _get(client, f"daily-stats/{sid}")
    assert daily["date_range"] == "30 days" and len(daily["daily_stats"]) == 31
    by_day: dict[str, tuple[int, set[str]]] = defaultdict(lambda: (0, set()))
    for e in site["events"]:
        day = datetime.fromisoformat(e["timestamp"]).date().isoformat() + "T00:00:00Z"
        n, who = by_day[day]
        by_day[day] = (n + 1, who | {e["visitor_id"]})
    dates = [d["date"] for d in daily["daily_stats"]]
    assert dates == sorted(dates, reverse=True) and dates[0][:10] == site["now"].date().isoformat()
    for d in daily["daily_stats"]:
        n, who = by_day.get(d["date"], (0, set()))
        assert (d["views"], d["unique"]) == (n, len(who)), d


@pytest.mark.parametrize(("raw", "days"), [("3", 3), ("+2", 2), ("abc", 7), ("0", 7), ("-2", 7),
                                           ("1.5", 7), ("", 7), ("99999", 730),
                                           (["4", "9"], 4)])  # fmt: skip
async def test_days_parsed_like_the_old_service(
    client: httpx.AsyncClient, site: dict[str, Any], raw: str | list[str], days: int
) -> None:
    """Go's ``strconv.Atoi`` (a sign is allowed); a repeated parameter: gin's first."""
    body = await _get(client, f"top-os/{site['id']}", days=raw, limit=raw)
    assert body["date_range"] == f"{days} days"


async def test_numbers_equal_graphql(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: dict[str, Any]
) -> None:
    sid = site["id"]
    for days in (7, 30):
        rest = {r: await _get(client, f"{r}/{sid}", days=days) for r in (
            *LISTS, "dashboard", "traffic-summary", "daily-stats")}  # fmt: skip
        live = await _get(client, f"live-visitors/{sid}")
        now = datetime.now(UTC)
        q = dashboard_query(intervals=("DAY",), dimensions=tuple((d, None) for _, _, d, _ in
                                                                  LISTS.values()), limit=10)  # fmt: skip
        g = await stats(client, admin_headers, sid, q, now - timedelta(days=days), now, "UTC")
        s, prev = g["summary"], g["summary"]["previous"]
        dash, ts = rest["dashboard"], rest["traffic-summary"]
        for old, new in (("page_views", "pageviews"), ("total_visitors", "visits"),
                         ("unique_visitors", "visitors"), ("bounce_rate", "bounceRate"),
                         ("session_duration", "visitDuration")):  # fmt: skip
            close(dash[old], s[new], f"dashboard.{old}")
        for old, new in (("total_page_views", "pageviews"), ("total_visitors", "visits"),
                         ("total_sessions", "visits"), ("unique_visitors", "visitors"),
                         ("avg_session_time", "visitDuration"), ("pages_per_session",
                         "viewsPerVisit"), ("bounce_rate", "bounceRate")):  # fmt: skip
            close(ts[old], s[new], f"traffic-summary.{old}")
        for old, new in (("growth_rate", "pageviews"), ("visitors_growth_rate", "visitors"),
                         ("sessions_growth_rate", "visits")):  # fmt: skip
            close(ts[old], s["change"][new] or 0.0, old)
        assert ts["new_visitors"] + ts["returning_visitors"] == s["visitors"]
        assert prev["pageviews"] == (1 if days == 7 else 0)
        for route, (key, label, dim, uniq) in LISTS.items():
            want = [(r["value"], r["pageviews"], r["visitors"], r["bounceRate"])
                    for r in g[f"b_{dim}"]["rows"]]  # fmt: skip
            got = [(r[label], r["views"], r[uniq], r.get("bounce_rate"))
                   for r in rest[route][key]]  # fmt: skip
            assert got == want, route
        want_days = [(b["start"][:10], b["pageviews"], b["visitors"]) for b in g["ts_DAY"]]
        got_days = [(d["date"][:10], d["views"], d["unique"])
                    for d in reversed(rest["daily-stats"]["daily_stats"])]  # fmt: skip
        if days == 30:
            assert got_days == want_days
    res = await client.post("/graphql", headers=admin_headers, json={
        "query": "query($id: ID!) { website(id: $id) { realtime { visitors } } }",
        "variables": {"id": sid}})  # fmt: skip
    assert live["live_visitors"] == res.json()["data"]["website"]["realtime"]["visitors"] == 1


async def test_hourly_stats_in_a_time_zone(
    client: httpx.AsyncClient, admin_headers: dict[str, str], site: dict[str, Any]
) -> None:
    sid = site["id"]
    for bad in ("Mars/Base", "America", "America/Argentina"):  # the last two: tz folders
        r = await client.get(f"{BASE}/hourly-stats/{sid}", params={"timezone": bad},
                             headers=KEY)  # fmt: skip
        assert r.status_code == 400 and "timezone" in r.json()["error"], (bad, r.text)
    for tz in ("UTC", "Asia/Kolkata"):
        body = await _get(client, f"hourly-stats/{sid}", timezone=tz, days=5)
        q = ("query($id: ID!, $tz: String) { website(id: $id) { stats(range: {preset: "
             "LAST_24_HOURS}, timezone: $tz) { timeseries(interval: HOUR) { start pageviews "
             "visitors } } } }")  # fmt: skip
        res = await client.post("/graphql", headers=admin_headers,
                                json={"query": q, "variables": {"id": sid, "tz": tz}})  # fmt: skip
        buckets = res.json()["data"]["website"]["stats"]["timeseries"]
        items = body["hourly_stats"]
        assert (body["timezone"], body["date_range"], len(items)) == (tz, "24 hours", 24)
        assert [(i["views"], i["unique"]) for i in items] == [
            (b["pageviews"], b["visitors"]) for b in buckets]  # fmt: skip
        offset = "+05:30" if tz == "Asia/Kolkata" else "Z"
        assert all(i["timestamp"].endswith(offset) and i["hour_label"].endswith(":00")
                   and i["hour_label"] == f"{i['hour']:02d}:00" for i in items)  # fmt: skip
        now_local = datetime.now(UTC).astimezone(
            datetime.fromisoformat(items[-1]["timestamp"]).tzinfo
        )
        assert items[-1]["hour"] == now_local.hour  # the current hour is the last one
        assert sum(i["views"] for i in items) == 5  # A's four and B's one page view
    trends = await _get(client, f"activity-trends/{sid}")
    assert [len(v) for v in trends["trends"].values()] == [24, 24, 24]
    assert sum(p["value"] for p in trends["trends"]["page_views"]) == 5


async def test_custom_events_from_the_events_table(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """Reference §12 custom-event fixture, stored as events and grouped by name."""
    sid = await make_website(client, admin_headers)
    now = datetime.now(UTC)

    def ev(
        i: int, name: str, props: dict[str, Any] | None, minutes: int, **kw: Any
    ) -> dict[str, Any]:
        return {"visitor_id": f"v{i}", "session_id": f"s{i}", "event_type": name, "page": "/",
                "timestamp": (now - timedelta(minutes=minutes)).isoformat(),
                "properties": props, **kw}  # fmt: skip

    events = [ev(i % 3, "signup", {"plan": "pro"}, 30 + i) for i in range(7)]
    events += [ev(1, "signup", {"plan": "free"}, 20), ev(2, "signup", {"plan": "free"}, 10)]
    events += [ev(5, "click", None, 5, utm_source="news", utm_campaign="launch")]
    events += [ev(9, "old", None, 30 * 24 * 60)]  # 30 days back: outside days=7
    await import_events(client, admin_headers, sid, events)
    body = await _get(client, f"custom-events/{sid}")
    check_shape(body, OLD["custom-events"])
    assert body["top_events"] == [
        {"event_type": "signup", "count": 9, "sample_properties": {"plan": "free"}},
        {"event_type": "click", "count": 1}]  # fmt: skip
    assert (body["total_events"], body["unique_events"], body["timeseries"]) == (10, 2, [])
    utm = body["utm_performance"]
    assert utm["campaigns"] == [{"campaign": "launch", "unique_visitors": 1, "visits": 1,
                                 "pageviews": 0}]  # fmt: skip
    assert utm["terms"] == [] and utm["content"] == []
    assert {s["source"]: s["unique_visitors"] for s in utm["sources"]} == {"(none)": 3, "news": 1}
    assert all(s["sessions"] == s["visits"] for s in utm["sources"])
    wide = await _get(client, f"custom-events/{sid}", days=31)
    assert (wide["total_events"], wide["unique_events"]) == (11, 3)


async def test_new_and_returning_visitors(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    sid = await make_website(client, admin_headers)
    now = datetime.now(UTC)
    events = [{"visitor_id": v, "session_id": f"{v}{n}", "page": "/", "event_type": "pageview",
               "timestamp": (now - timedelta(days=n, minutes=5)).isoformat()}
              for v, n in (("x", 9), ("x", 1), ("y", 1), ("z", 2))]  # fmt: skip
    await import_events(client, admin_headers, sid, events)
    week = await _get(client, f"traffic-summary/{sid}")
    assert (week["unique_visitors"], week["new_visitors"], week["returning_visitors"]) == (3, 2, 1)
    close(week["retention_rate"], 100 / 3, "retention_rate")
    assert week["growth_rate"] == 200  # 3 page views against 1 the week before
    ten = await _get(client, f"traffic-summary/{sid}", days=10)
    assert (ten["new_visitors"], ten["returning_visitors"], ten["growth_rate"]) == (3, 0, 0)
    # dashboard filters of the old frontend (AnalyticsFilters) narrow like GraphQL filters
    only = await _get(client, f"dashboard/{sid}", page_path="/nowhere")
    assert (only["page_views"], only["unique_visitors"]) == (0, 0)
