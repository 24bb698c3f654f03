"""Privacy: erase / export one visitor, the Seentics account routes (export, delete,
anonymise, retention policy, clean-up) under both prefixes, audit rows, and no IPs."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from graph.settings import Settings
from tests.conftest import API_KEY, gql, make_website, token
from tests.security_support import (
    ANONYMIZE_VISITOR,
    DELETE_VISITOR,
    TRACK,
    bearer,
    import_events,
    other_app,
    recent,
    set_owner,
)

GLOBAL = {"X-API-Key": API_KEY}
PREFIXES = ("/api/v1/privacy", "/api/v1/analytics/privacy")


async def visit(client: httpx.AsyncClient, site: str, visitor: str, n: int = 2,
                city: str = "Paris") -> None:  # fmt: skip
    await import_events(client, GLOBAL, site, [
        {"visitorId": visitor, "sessionId": f"s-{visitor}", "page": f"/p{i}",
         "timestamp": recent(20 - i), "city": city, "country": "FR",
         "referrer": "https://search.example/q?term=secret#frag"} for i in range(n)
    ])  # fmt: skip


async def rows(pool: Any, table: str, site: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(f"SELECT * FROM {table} WHERE website_id = $1", site)]


async def audits(pool: Any, action: str, site: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(
        "SELECT actor, detail FROM audit_log WHERE action = $1 AND website_id = $2", action, site)]  # fmt: skip


async def test_delete_visitor_data(
    client: httpx.AsyncClient, settings: Settings, pool: Any
) -> None:
    site = await make_website(client, GLOBAL)
    await visit(client, site, "gone", 3)
    await visit(client, site, "kept", 2)
    read = bearer(token(settings, [site], "read"))
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": site, "visitorId": "gone"}}, read)
    assert res["data"]["deleteVisitorData"]["userErrors"][0]["code"] == "FORBIDDEN"
    write = bearer(token(settings, [site], "write"))
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": site, "visitorId": " "}}, write)
    assert res["data"]["deleteVisitorData"]["userErrors"][0]["field"] == ["visitorId"]
    res = await gql(client, DELETE_VISITOR, {"i": {"websiteId": site, "visitorId": "gone"}}, write)
    assert res["data"]["deleteVisitorData"] == {"deletedId": "gone", "userErrors": []}
    events = await rows(pool, "events", site)
    sessions = await rows(pool, "sessions", site)
    assert {e["visitor_id"] for e in events} == {"kept"} and len(events) == 2
    assert {s["visitor_id"] for s in sessions} == {"kept"}
    assert [a["detail"] for a in await audits(pool, "delete_visitor", site)] == [
        {"visitor_id": "gone", "events": 3, "sessions": 1}
    ]
    # The same through REST.
    r = await client.delete(f"/api/v1/privacy/visitor/{site}/kept", headers=write)
    assert r.status_code == 200 and r.json()["deleted"] == {"events": 2, "sessions": 1}
    assert await rows(pool, "events", site) == []


SUMMARY = """query($id: ID!, $r: RangeInput!) { website(id: $id) { stats(range: $r) {
  summary { visitors visits pageviews } } } }"""


async def test_anonymize_one_visitor(
    client: httpx.AsyncClient, settings: Settings, pool: Any
) -> None:
    site = await make_website(client, GLOBAL)
    other = await make_website(client, GLOBAL)
    await visit(client, site, "me", 3)
    await visit(client, site, "you", 2)
    await visit(client, other, "me", 1)
    week = {"preset": "LAST_7_DAYS"}
    before = await gql(client, SUMMARY, {"id": site, "r": week}, GLOBAL)
    read = bearer(token(settings, [site], "read"))
    write = bearer(token(settings, [site], "write"))
    res = await gql(client, ANONYMIZE_VISITOR, {"i": {"websiteId": site, "visitorId": "me"}}, read)
    assert res["data"]["anonymizeVisitorData"]["userErrors"][0]["code"] == "FORBIDDEN"
    res = await gql(client, ANONYMIZE_VISITOR, {"i": {"websiteId": site, "visitorId": ""}}, write)
    assert res["data"]["anonymizeVisitorData"]["userErrors"][0]["field"] == ["visitorId"]
    assert {e["visitor_id"] for e in await rows(pool, "events", site)} == {"me", "you"}
    res = await gql(client, ANONYMIZE_VISITOR, {"i": {"websiteId": site, "visitorId": "me"}}, write)
    assert res["data"]["anonymizeVisitorData"] == {"events": 3, "sessions": 1, "userErrors": []}
    events, sessions = await rows(pool, "events", site), await rows(pool, "sessions", site)
    mine = [e for e in events if e["visitor_id"] != "you"]
    [anon_id] = {e["visitor_id"] for e in mine}
    assert re.fullmatch(r"anon_[0-9a-f]{16}", anon_id)
    assert {e["session_id"] for e in mine} == {s["session_id"] for s in sessions
                                               if s["visitor_id"] == anon_id}  # fmt: skip
    assert re.fullmatch(r"anon_[0-9a-f]{16}", mine[0]["session_id"])
    assert all(e["city"] is None and e["referrer"] == "https://search.example/q" for e in mine)
    yours = [e for e in events if e["visitor_id"] == "you"]
    assert len(yours) == 2 and all(e["city"] == "Paris" for e in yours)
    assert {e["visitor_id"] for e in await rows(pool, "events", other)} == {"me"}
    after = await gql(client, SUMMARY, {"id": site, "r": week}, GLOBAL)
    counted = {"visitors": 2, "visits": 2, "pageviews": 5}  # same people, same visits
    assert before["data"]["website"]["stats"]["summary"] == counted
    assert after["data"]["website"]["stats"]["summary"] == counted
    [audit] = await audits(pool, "anonymize_visitor", site)
    assert audit["detail"] == {"events": 3, "sessions": 1}  # never the visitor's id
    # The same through REST, under both prefixes; the old id now finds nothing.
    for prefix in PREFIXES:
        r = await client.put(f"{prefix}/visitor/{site}/you/anonymize/", headers=write)
        assert r.status_code == 200, r.text
        want = {"events": 2, "sessions": 1} if prefix == PREFIXES[0] else {"events": 0,
                                                                         "sessions": 0}
        assert r.json() == {"success": True, "message": "Visitor data anonymized successfully",
                            "anonymized": want}  # fmt: skip
    assert "you" not in {e["visitor_id"] for e in await rows(pool, "events", site)}
    r = await client.put(f"/api/v1/privacy/visitor/{other}/me/anonymize", headers=write)
    assert r.status_code in (403, 404)
    assert {e["visitor_id"] for e in await rows(pool, "events", other)} == {"me"}


async def test_visitor_export_is_ndjson(client: httpx.AsyncClient, settings: Settings) -> None:
    site = await make_website(client, GLOBAL)
    await visit(client, site, "me", 2)
    await visit(client, site, "other", 1)
    read = bearer(token(settings, [site], "read"))
    for prefix in PREFIXES:
        for slash in ("", "/"):
            r = await client.get(f"{prefix}/visitor/{site}/me/export{slash}", headers=read)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/x-ndjson")
            records = [orjson.loads(line) for line in r.content.splitlines()]
            assert [x["record"] for x in records] == ["event", "event", "session"]
            assert [x["page"] for x in records[:2]] == ["/p0", "/p1"]
            assert {x["visitor_id"] for x in records} == {"me"}
            assert records[2]["pageviews"] == 2
    r = await client.get(f"/api/v1/privacy/visitor/{site}/nobody/export", headers=read)
    assert r.status_code == 200 and r.content == b""


@pytest.fixture
async def account(client: httpx.AsyncClient, pool: Any) -> dict[str, Any]:
    """An account owning two websites with traffic and a funnel; a stranger's website."""
    owner = f"acct-{uuid.uuid4().hex[:8]}"
    sites = sorted([await make_website(client, GLOBAL, domain="one.example"),
                    await make_website(client, GLOBAL, domain="two.example")])  # fmt: skip
    stranger = await make_website(client, GLOBAL, domain="three.example")
    for i, site in enumerate(sites):
        await set_owner(client, GLOBAL, site, owner)
        await visit(client, site, f"v{i}a", 2)
        await visit(client, site, f"v{i}b", 1, city="Lyon")
    await set_owner(client, GLOBAL, stranger, "someone-else")
    await visit(client, stranger, "s", 2)
    res = await gql(client, """mutation($i: CreateFunnelInput!) { createFunnel(input: $i) {
        userErrors { code } } }""", {"i": {"websiteId": sites[0], "name": "F", "steps": [
        {"name": "a", "type": "PAGE", "pattern": "/p0"},
        {"name": "b", "type": "PAGE", "pattern": "/p1"}]}}, GLOBAL)  # fmt: skip
    assert res["data"]["createFunnel"]["userErrors"] == []
    return {"owner": owner, "sites": sites, "stranger": stranger}


async def test_account_export(client: httpx.AsyncClient, settings: Settings,
                              account: dict[str, Any]) -> None:  # fmt: skip
    owner, sites = account["owner"], account["sites"]
    r = await client.get(f"/api/v1/analytics/privacy/export/{owner}/", headers=GLOBAL)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Analytics data exported successfully"
    assert body["data"]["user_id"] == owner
    parts = body["data"]["data"]
    events = parts["events"][0]
    assert events["website_ids"] == sites and events["events_count"] == 6
    assert len(events["data"]) == 6 and events["truncated"] is False
    assert {e["website_id"] for e in events["data"]} == set(sites)
    assert sum(d["page_views"] for d in parts["analytics"][0]["data"]) == 6
    assert [f["name"] for f in parts["funnels"][0]["data"]] == ["F"]
    # A tenant admin of one website sees that website only; read scope is not enough.
    r = await client.get(f"/api/v1/privacy/export/{owner}",
                         headers=bearer(token(settings, [sites[1]], "admin")))  # fmt: skip
    assert r.json()["data"]["data"]["events"][0]["website_ids"] == [sites[1]]
    r = await client.get(f"/api/v1/privacy/export/{owner}",
                         headers=bearer(token(settings, sites, "read")))  # fmt: skip
    assert r.status_code == 403 and "error" in r.json()
    # Unknown account: the old "no websites" variant for full access, 404 for tenants.
    r = await client.get("/api/v1/privacy/export/nobody", headers=GLOBAL)
    assert r.json()["data"]["data"]["events"][0]["message"] == "No websites found for user"
    r = await client.get("/api/v1/privacy/export/nobody",
                         headers=bearer(token(settings, sites, "admin")))  # fmt: skip
    assert r.status_code == 404 and r.json() == {"error": "user 'nobody' not found"}


async def test_account_delete(client: httpx.AsyncClient, pool: Any,
                              account: dict[str, Any]) -> None:  # fmt: skip
    owner, sites, stranger = account["owner"], account["sites"], account["stranger"]
    r = await client.delete(f"/api/v1/privacy/delete/{owner}/", headers=GLOBAL)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "User analytics data deleted successfully"
    for site in sites:
        assert await rows(pool, "events", site) == [] and await rows(pool, "sessions", site) == []
        assert await pool.fetchval("SELECT count(*) FROM funnels WHERE website_id = $1", site) == 0
        assert await pool.fetchval("SELECT count(*) FROM websites WHERE id = $1", site) == 1
        [audit] = await audits(pool, "delete_account_data", site)
        assert audit["actor"] == "global-api-key" and audit["detail"] == {
            "events": 3,
            "sessions": 2,
            "funnels": int(site == sites[0]),
        }
    assert len(await rows(pool, "events", stranger)) == 2


async def test_owner_set_at_creation_is_what_account_routes_cover(
    client: httpx.AsyncClient, pool: Any
) -> None:
    """``createWebsite(ownerId)`` is how an account comes to own a website (the account
    routes find nothing otherwise); a bad owner id is a user error naming it."""
    owner, site = f"acct-{uuid.uuid4().hex[:8]}", f"own-{uuid.uuid4().hex[:8]}"
    create = """mutation($i: CreateWebsiteInput!) { createWebsite(input: $i) {
        website { id ownerId } userErrors { field code } } }"""
    bad = await gql(client, create, {"i": {"id": site, "domain": "own.example", "ownerId": "a/b"}},
                    GLOBAL)  # fmt: skip
    assert bad["data"]["createWebsite"]["userErrors"] == [{"field": ["ownerId"], "code": "INVALID"}]
    res = await gql(client, create, {"i": {"id": site, "domain": "own.example", "ownerId": owner}},
                    GLOBAL)  # fmt: skip
    assert res["data"]["createWebsite"]["website"] == {"id": site, "ownerId": owner}
    await visit(client, site, "v1", 2)
    r = await client.delete(f"/api/v1/privacy/delete/{owner}", headers=GLOBAL)
    assert r.status_code == 200, r.text
    assert await rows(pool, "events", site) == []


async def test_website_delete(client: httpx.AsyncClient, settings: Settings, pool: Any,
                              account: dict[str, Any]) -> None:  # fmt: skip
    site = account["sites"][0]
    write = bearer(token(settings, [site], "write"))
    r = await client.delete(f"/api/v1/analytics/privacy/delete/website/{site}", headers=write)
    assert r.status_code == 403  # needs admin
    admin = bearer(token(settings, [site], "admin"))
    r = await client.delete(f"/api/v1/analytics/privacy/delete/website/{site}", headers=admin)
    assert r.status_code == 200 and r.json() == {
        "success": True, "message": "Website analytics data deleted successfully",
        "deleted": {"events": 6 - 3, "sessions": 2, "funnels": 1}}  # fmt: skip
    assert await rows(pool, "events", site) == []
    assert len(await rows(pool, "events", account["sites"][1])) == 3
    assert len(await audits(pool, "delete_website_data", site)) == 1


async def test_anonymize(client: httpx.AsyncClient, pool: Any, account: dict[str, Any]) -> None:
    owner, sites = account["owner"], account["sites"]
    before = {s: await rows(pool, "events", s) for s in sites}
    r = await client.put(f"/api/v1/privacy/anonymize/{owner}", headers=GLOBAL)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Analytics data anonymized successfully"
    anon = re.compile(r"^anon_[0-9a-f]{16}$")
    for site in sites:
        events, sessions = await rows(pool, "events", site), await rows(pool, "sessions", site)
        assert all(anon.match(e["visitor_id"]) and anon.match(e["session_id"]) for e in events)
        assert all(e["city"] is None for e in events + sessions)
        assert {e["referrer"] for e in events} == {"https://search.example/q"}
        assert {e["country"] for e in events} == {"FR"}
        # Same people, same visits: distinct counts and event↔session links survive.
        assert len({e["visitor_id"] for e in events}) == len(
            {e["visitor_id"] for e in before[site]}
        )
        assert {e["session_id"] for e in events} == {s["session_id"] for s in sessions}
        pairs = {(s["session_id"], s["visitor_id"]) for s in sessions}
        assert {(e["session_id"], e["visitor_id"]) for e in events} == pairs
        assert len(await audits(pool, "anonymize", site)) == 1
    # Running it again changes nothing further.
    snapshot = {s: sorted(e["visitor_id"] for e in await rows(pool, "events", s)) for s in sites}
    r = await client.put(f"/api/v1/analytics/privacy/anonymize/{owner}/", headers=GLOBAL)
    assert r.status_code == 200
    assert snapshot == {s: sorted(e["visitor_id"] for e in await rows(pool, "events", s))
                        for s in sites}  # fmt: skip
    stranger = await rows(pool, "events", account["stranger"])
    assert {e["visitor_id"] for e in stranger} == {"s"}


async def test_retention_policies_and_cleanup(
    client: httpx.AsyncClient, settings: Settings, pool: Any
) -> None:
    for prefix in PREFIXES:
        for slash in ("", "/"):
            r = await client.get(f"{prefix}/retention-policies{slash}", headers=GLOBAL)
            assert r.status_code == 200
            data = r.json()["data"]
            assert [d["data_type"] for d in data] == ["Analytics Events", "Session Data",
                                                      "IP Addresses"]  # fmt: skip
            assert data[0]["retention_period"] == settings.retention_days
            assert data[0]["retention_unit"] == "days" and data[2]["retention_period"] == 0
    site = await make_website(client, GLOBAL)
    old = (datetime.now(UTC) - timedelta(days=4000)).isoformat()
    await import_events(client, GLOBAL, site, [{"page": "/old", "timestamp": old},
                                               {"page": "/new", "timestamp": recent()}])  # fmt: skip
    # Retention of 10 years on a second app, so that no other test's data is old enough.
    async with other_app(settings, "198.51.100.41", retention_days=3650) as (c, _):
        r = await c.post("/api/v1/privacy/cleanup", headers=bearer(token(settings, [site])))
        assert r.status_code == 403
        r = await c.post("/api/v1/analytics/privacy/cleanup/", headers=GLOBAL)
        assert r.status_code == 200 and r.json()["success"] is True
        assert r.json()["deleted_events"] >= 1
    assert [e["page"] for e in await rows(pool, "events", site)] == ["/new"]


async def test_ip_is_never_stored(client: httpx.AsyncClient, pool: Any) -> None:
    site = await make_website(client, GLOBAL)
    res = await gql(client, TRACK, {"i": {"websiteId": site, "events": [{"page": "/"}]}},
                    {"X-Forwarded-For": "192.0.2.77"})  # fmt: skip
    assert res["data"]["trackEvents"]["accepted"] == 1
    ip_columns = await pool.fetch(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND (data_type IN ('inet', 'cidr')
                 OR column_name ~* '(^|_)ip(_|$)|ip_address')""")  # fmt: skip
    assert ip_columns == []
    for table in ("events", "sessions"):
        found = await pool.fetchval(
            f"SELECT count(*) FROM {table} t WHERE website_id = $1 AND (row_to_json(t)::text"
            " LIKE '%203.0.113.7%' OR row_to_json(t)::text LIKE '%192.0.2.77%')", site)  # fmt: skip
        assert found == 0
