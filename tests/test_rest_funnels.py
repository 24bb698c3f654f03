"""REST funnel routes (reference §3.12, §7.3): CRUD in the old JSON, /funnels/active for
the tracker, analytics computed from events (the §12 funnel example under metrics.md),
compare, and the funnel tracker's real payloads (text/plain beacon, JSON-string ids)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from graph.settings import Settings
from tests.conftest import API_KEY, gql, make_website, token
from tests.rest_support import ANALYTICS, COMPARE, DETAILED, FUNNEL, check_shape
from tests.stats_support import close, import_events

KEY = {"X-API-Key": API_KEY}
F = "/api/v1/funnels"
OLD_STEPS = [
    {"id": "s1", "name": "Home", "type": "page", "condition": {"page": "/home"}, "order": 1},
    {"id": "s2", "name": "Pricing", "type": "page", "condition": {"page": "/pricing"}, "order": 2},
    {"id": "s3", "name": "Signup", "type": "page", "condition": {"page": "/signup"}, "order": 3},
]


async def _create(client: httpx.AsyncClient, site: str, headers: dict[str, str] | None = None,
                  **fields: Any) -> dict[str, Any]:  # fmt: skip
    body = {"name": "Signup flow", "website_id": site, "steps": OLD_STEPS, **fields}
    r = await client.post(f"{F}/", json=body, headers=headers or KEY)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_crud_in_the_old_shapes(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    site = await make_website(client, admin_headers)
    made = await _create(client, site, description="why", user_id="ignored")
    check_shape(made, {"success": "boolean", "data": FUNNEL})
    f = made["data"]
    assert f["is_active"] is True  # old default false (B-25)
    assert f["steps"] == [{"id": str(i + 1), "name": s["name"], "type": "page",
                           "condition": s["condition"], "order": i + 1}
                          for i, s in enumerate(OLD_STEPS)]  # fmt: skip
    got = await client.get(f"{F}/{f['id']}", headers=KEY)
    assert got.status_code == 200 and got.json() == {"funnel": f}
    listed = await client.get(F, params={"website_id": site}, headers=KEY)  # no trailing slash
    assert listed.status_code == 200 and listed.json() == {"success": True, "data": [f]}

    steps = [{"name": "Any", "type": "page", "condition": {"page": "/p/*"}},
             {"name": "Click", "type": "event", "condition": {"event": "#buy"}},
             {"name": "Paid", "type": "custom", "condition": {"custom": "purchase"}}]  # fmt: skip
    put = await client.put(f"{F}/{f['id']}/", headers=KEY, json={
        **f, "name": "Renamed", "description": None, "steps": steps, "is_active": False})  # fmt: skip
    assert put.status_code == 200, put.text
    g = put.json()["funnel"]
    check_shape(g, FUNNEL)
    assert (g["name"], g["description"], g["is_active"]) == ("Renamed", "why", False)
    assert [(s["type"], s["condition"]) for s in g["steps"]] == [
        ("page", {"page": "/p/*"}), ("event", {"event": "#buy"}),
        ("custom", {"custom": "purchase"})]  # fmt: skip
    assert g["updated_at"] > f["updated_at"]
    res = await gql(client, "query($id: ID!) { funnel(id: $id) { steps { type pattern } } }",
                    {"id": f["id"]}, admin_headers)  # fmt: skip
    assert res["data"]["funnel"]["steps"] == [{"type": "PAGE", "pattern": "/p/*"},
                                              {"type": "EVENT", "pattern": "#buy"},
                                              {"type": "CUSTOM", "pattern": "purchase"}]  # fmt: skip
    active = await client.get(f"{F}/active", params={"website_id": site})  # public
    assert active.status_code == 200 and active.json() == []
    gone = await client.delete(f"{F}/{f['id']}", headers=KEY)
    assert gone.json() == {"success": True, "message": "Funnel deleted successfully"}
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, f"{F}/{f['id']}", headers=KEY, json={"name": "x"})
        assert (r.status_code, r.json()) == (404, {"error": "Funnel not found"})
        r = await client.request(method, f"{F}/not-a-uuid", headers=KEY, json={"name": "x"})
        assert (r.status_code, r.json()["error"]) == (400, "Invalid funnel ID")


async def test_bad_input_and_access(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    site = await make_website(client, admin_headers)
    other = await make_website(client, admin_headers)
    for body in ({"website_id": site, "steps": OLD_STEPS}, {"name": "x", "steps": OLD_STEPS},
                 {"name": "x", "website_id": site, "steps": OLD_STEPS[:1]},
                 {"name": "x", "website_id": site, "steps": [{"name": "a", "type": "page"}] * 2},
                 {"name": "x", "website_id": site, "steps": [{"name": "a", "type": "link",
                                                              "condition": {"page": "/"}}] * 2},
                 {"name": "x", "website_id": site}):  # fmt: skip
        r = await client.post(F, json=body, headers=KEY)
        assert r.status_code == 400 and r.json()["error"] == "Invalid funnel data", (body, r.text)
        assert r.json()["details"]
    r = await client.post(F, content=b"{nope", headers=KEY)
    assert r.status_code == 400 and r.json()["error"] == "Invalid funnel data"
    r = await client.get(F, headers=KEY)
    assert (r.status_code, r.json()["error"]) == (400, "website_id is required")
    r = await client.get(f"{F}/active")
    assert (r.status_code, r.json()["error"]) == (400, "website_id is required")
    assert (await client.get(f"{F}/active", params={"website_id": "nope"})).status_code == 404
    f = (await _create(client, site))["data"]
    assert (await client.post(F, json={"name": "x"})).json() == {"error": "Missing API key"}
    theirs = {"Authorization": f"Bearer {token(settings, [other], 'admin')}"}
    reader = {"Authorization": f"Bearer {token(settings, [site], 'read')}"}
    for method, url in (("GET", f"{F}/{f['id']}"), ("PUT", f"{F}/{f['id']}"),
                        ("DELETE", f"{F}/{f['id']}"), ("GET", f"{F}/{f['id']}/analytics"),
                        ("GET", f"{F}/{f['id']}/analytics/detailed")):  # fmt: skip
        r = await client.request(method, url, headers=theirs, json={"name": "x"})
        assert (r.status_code, r.json()) == (404, {"error": "Funnel not found"}), (method, url)
    r = await client.get(F, params={"website_id": site}, headers=theirs)
    assert (r.status_code, r.json()) == (404, {"error": "Website not found"})
    r = await client.post(F, json={"name": "x", "website_id": site, "steps": OLD_STEPS},
                          headers=theirs)  # fmt: skip
    assert r.status_code == 404
    assert (await client.get(f"{F}/{f['id']}", headers=reader)).status_code == 200
    for method in ("PUT", "DELETE"):
        r = await client.request(method, f"{F}/{f['id']}", headers=reader, json={"name": "x"})
        assert r.status_code == 403 and "error" in r.json()
    r = await client.post(F, json={"name": "x", "website_id": site, "steps": OLD_STEPS},
                          headers=reader)  # fmt: skip
    assert r.status_code == 403
    active = (await client.get(f"{F}/active/", params={"website_id": site})).json()
    assert [a["id"] for a in active] == [f["id"]] and "user_id" not in active[0]
    check_shape(active, [FUNNEL])


@pytest.fixture(scope="module")
async def funnel(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """Reference §12 funnel fixture as page views: V1 converts in 5 minutes, V2 drops
    at step 2 yesterday, V3 only starts (2 hours ago)."""
    site = await make_website(client, admin_headers)
    now = datetime.now(UTC)
    m, d = timedelta(minutes=1), timedelta(days=1)
    plan = [("V1", "/home", now - 10 * m), ("V1", "/pricing", now - 8 * m),
            ("V1", "/signup", now - 5 * m), ("V2", "/home", now - d),
            ("V2", "/pricing", now - d + m), ("V2", "/pricing", now - d + 2 * m),
            ("V3", "/home", now - 120 * m)]  # fmt: skip
    events = [{"visitor_id": v, "session_id": f"{v}-s", "event_type": "pageview", "page": p,
               "timestamp": t.isoformat()} for v, p, t in plan]  # fmt: skip
    await import_events(client, admin_headers, site, events)
    f = (await _create(client, site))["data"]
    other = (await _create(client, site, name="Blog", steps=[
        {"name": "Blog", "type": "page", "condition": {"page": "/blog"}},
        {"name": "Home", "type": "page", "condition": {"page": "/home"}}]))["data"]  # fmt: skip
    return {"site": site, "id": f["id"], "other": other["id"], "plan": plan, "now": now}


async def test_analytics_worked_example(client: httpx.AsyncClient, funnel: dict[str, Any]) -> None:
    r = await client.get(f"{F}/{funnel['id']}/analytics", headers=KEY)
    body = r.json()
    check_shape(body, ANALYTICS)
    assert (body["funnel_id"], body["website_id"], body["date"]) == (
        funnel["id"], funnel["site"], datetime.now(UTC).date().isoformat())  # fmt: skip
    assert (body["total_starts"], body["total_conversions"], body["avg_time_to_convert"]) == (
        3,
        1,
        300,
    )
    close(body["conversion_rate"], 100 / 3, "conversion_rate")
    close(body["drop_off_rate"], 200 / 3, "drop_off_rate")
    assert body["abandonment_rate"] == body["drop_off_rate"]

    r = await client.get(f"{F}/{funnel['id']}/analytics/detailed/", headers=KEY)
    detailed = r.json()
    check_shape(detailed, DETAILED)
    data = detailed["data"]
    steps = [(s["step_id"], s["step_name"], s["step_order"], s["visitors_reached"],
              round(s["conversion_rate"], 2), round(s["drop_off_rate"], 2))
             for s in data["step_analytics"]]  # fmt: skip
    assert steps == [("1", "Home", 1, 3, 66.67, 33.33), ("2", "Pricing", 2, 2, 50.0, 50.0),
                     ("3", "Signup", 3, 1, 100.0, 0.0)]  # fmt: skip
    assert data["date_range"] == 7 and len(data["daily_performance"]) == 8
    starts: dict[str, set[str]] = {}
    for v, page, t in funnel["plan"]:
        if page == "/home":
            starts.setdefault(t.date().isoformat(), set()).add(v)
    busy = {d["date"]: (d["total_starts"], d["conversions"]) for d in data["daily_performance"]
            if d["total_starts"]}  # fmt: skip
    assert busy == {day: (len(vs), int("V1" in vs)) for day, vs in starts.items()}
    cohorts = {c["cohort_date"]: (c["cohort_size"], c["conversions"], c["avg_time_to_convert"])
               for c in data["cohort_data"]}  # fmt: skip
    assert cohorts == {day: (len(vs), int("V1" in vs), 300 if "V1" in vs else 0)
                       for day, vs in starts.items()}  # fmt: skip

    r = await client.post(f"{F}/compare", params={"website_id": funnel["site"]}, headers=KEY,
                          json={"funnel_ids": [funnel["other"], funnel["id"], str(uuid.uuid4()),
                                               "junk"], "date_range": 0, "metrics": ["x"]})  # fmt: skip
    cmp = r.json()
    check_shape(cmp, COMPARE)
    assert [c["funnel_id"] for c in cmp["data"]] == [funnel["id"], funnel["other"]]
    close(cmp["data"][0]["performance_score"], 0.8 * 100 / 3 + 20, "score")  # 46.67 (§12)
    close(cmp["data"][1]["performance_score"], 30.0, "score without entries")
    for params, body in (({}, {"funnel_ids": []}), ({"website_id": funnel["site"]}, {}),
                         ({"website_id": funnel["site"]}, {"funnel_ids": "x"})):  # fmt: skip
        r = await client.post(f"{F}/compare", params=params, json=body, headers=KEY)
        assert r.status_code == 400 and r.json()["error"] in (
            "website_id is required", "Invalid comparison request")  # fmt: skip
    r = await client.post(f"{F}/compare", params={"website_id": "nope"},
                          json={"funnel_ids": []}, headers=KEY)  # fmt: skip
    assert r.status_code == 404


async def test_analytics_equal_the_graphql_report(
    client: httpx.AsyncClient, admin_headers: dict[str, str], funnel: dict[str, Any]
) -> None:
    rest = (await client.get(f"{F}/{funnel['id']}/analytics", params={"days": 3},
                             headers=KEY)).json()  # fmt: skip
    now = datetime.now(UTC)
    rng = {"from": (now - timedelta(days=3)).isoformat(), "to": now.isoformat()}
    res = await gql(client, """query($id: ID!, $r: RangeInput!) { funnel(id: $id) {
        report(range: $r, timezone: "UTC") { entered converted conversionRate
        timeToConvert { mean } steps { reached } } } }""", {"id": funnel["id"], "r": rng},
                    admin_headers)  # fmt: skip
    rep = res["data"]["funnel"]["report"]
    assert (rest["total_starts"], rest["total_conversions"]) == (rep["entered"], rep["converted"])
    close(rest["conversion_rate"], rep["conversionRate"], "conversion_rate")
    assert rest["avg_time_to_convert"] == int(rep["timeToConvert"]["mean"])


def _stored(value: str) -> str:
    """What tracker.js keeps in localStorage and funnel-tracker.js sends raw (B-27)."""
    return orjson.dumps({"value": value, "expiresAt": 1893456000000}).decode()


async def test_tracker_payloads_drive_event_steps(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """An old-style funnel with an ``event`` (CSS selector) step, fed by tracker.js's
    batch beacon and funnel-tracker.js reports, both sent as text/plain."""
    site = await make_website(client, admin_headers, domain="shop.example")
    f = (await _create(client, site, steps=[
        {"id": "a", "name": "Product", "type": "page", "condition": {"page": "/product/*"}},
        {"id": "b", "name": "Buy click", "type": "event", "condition": {"event": "button.buy"}},
    ]))["data"]  # fmt: skip
    active = (await client.get(f"{F}/active", params={"website_id": site})).json()
    assert [a["id"] for a in active] == [f["id"]]
    now = datetime.now(UTC)
    batch = {"siteId": site, "domain": "shop.example", "events": [{
        "website_id": site, "visitor_id": "vis1", "session_id": "ses1", "event_type": "pageview",
        "page": "/product/42", "referrer": None, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "time_on_page": 0,
        "timestamp": now.isoformat().replace("+00:00", "Z"), "utm_source": None,
        "utm_medium": None, "utm_campaign": None, "utm_term": None, "utm_content": None}]}  # fmt: skip
    r = await client.post("/api/v1/analytics/event/batch", content=orjson.dumps(batch),
                          headers={"content-type": "text/plain;charset=UTF-8",
                                   "origin": "https://shop.example"})  # fmt: skip
    assert r.status_code == 201 and r.json()["events_count"] == 1
    report = {"funnel_id": f["id"], "website_id": site, "visitor_id": _stored("vis1"),
              "session_id": _stored("ses1"), "current_step": 2, "completed_steps": [0, 1],
              "started_at": now.isoformat(), "last_activity": (now + timedelta(seconds=3)).isoformat(),
              "converted": True, "event_type": "conversion", "step_name": "Buy click",
              "step_type": "event"}  # fmt: skip
    r = await client.post(f"{F}/track", content=orjson.dumps(report),
                          headers={"content-type": "text/plain"})  # fmt: skip
    assert r.status_code == 201 and r.json()["visitor_id"] == "vis1"
    body = (await client.get(f"{F}/{f['id']}/analytics", headers=KEY)).json()
    assert (body["total_starts"], body["total_conversions"], body["avg_time_to_convert"]) == (
        1,
        1,
        3,
    )
