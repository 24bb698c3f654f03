"""Tenant isolation: every GraphQL root field and every REST route, called with
credentials for website A against website B's ids, answers not found / forbidden and
changes nothing.

The root fields are enumerated by introspection and the REST routes from the app's
router, so a field or route added later without a case here fails
``test_every_root_field_has_a_case`` / ``test_every_rest_route_has_a_case``.
Credentials for A are the strongest a tenant can hold (admin scope on A): whatever is
refused is refused because of tenancy, not scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

from graph.context import Context
from graph.schema import schema
from resolvers.access import Principal
from tests.conftest import gql
from tests.security_support import (
    ANONYMIZE_VISITOR,
    CREATE_FUNNEL,
    CREATE_KEY,
    DELETE_VISITOR,
    IMPORT,
    REVOKE_KEY,
    TRACK,
    event_count,
    make_tenant,
    recent,
)

ROOTS = """{ __schema { queryType { fields { name } } mutationType { fields { name } }
  subscriptionType { fields { name } } } }"""
RANGE = {"preset": "LAST_7_DAYS"}
STEPS = [
    {"name": "a", "type": "PAGE", "pattern": "/"},
    {"name": "b", "type": "PAGE", "pattern": "/b"},
]

Case = Callable[[SimpleNamespace], Awaitable[None]]


@pytest.fixture(scope="module")
async def t(client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Any,
            pool: Any, app: Any) -> SimpleNamespace:  # fmt: skip
    a = await make_tenant(client, admin_headers, settings, pool, domain="a.example")
    b = await make_tenant(client, admin_headers, settings, pool, domain="b.example")
    return SimpleNamespace(client=client, a=a, b=b, pool=pool, app=app, settings=settings,
                           admin=admin_headers)  # fmt: skip


def user_error_code(res: dict[str, Any], field: str) -> str:
    assert "errors" not in res, res
    errors = res["data"][field]["userErrors"]
    assert len(errors) == 1, res
    code: str = errors[0]["code"]
    return code


async def q(t: SimpleNamespace, query: str, variables: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return await gql(t.client, query, variables, headers if headers is not None else t.a.headers)


# --- Query -------------------------------------------------------------------------------


async def case_website(t: SimpleNamespace) -> None:
    res = await q(t, "query($id: ID!) { website(id: $id) { id domain } }", {"id": t.b.site})
    assert res == {"data": {"website": None}, "extensions": res.get("extensions")}


async def case_websites(t: SimpleNamespace) -> None:
    res = await q(t, "{ websites { id } }")
    ids = {w["id"] for w in res["data"]["websites"]}
    assert t.a.site in ids and t.b.site not in ids


async def case_definitions(t: SimpleNamespace) -> None:
    # Not tenant data: the metric contract, the same for everyone.
    res = await q(t, "{ definitions { name } }")
    assert res["data"]["definitions"]


async def case_funnel(t: SimpleNamespace) -> None:
    res = await q(t, "query($id: ID!) { funnel(id: $id) { id name } }", {"id": t.b.funnel})
    assert res["data"]["funnel"] is None


async def case_compare_funnels(t: SimpleNamespace) -> None:
    res = await q(t, "query($ids: [ID!]!, $r: RangeInput!) { compareFunnels(ids: $ids, "
                  "range: $r) { entered } }", {"ids": [t.b.funnel], "r": RANGE})  # fmt: skip
    assert res["data"]["compareFunnels"] == [], res


async def case_api_keys(t: SimpleNamespace) -> None:
    res = await q(t, "{ apiKeys { id websites } }")
    ids = {k["id"] for k in res["data"]["apiKeys"]}
    assert t.a.key_id in ids and t.b.key_id not in ids


# --- Mutation ----------------------------------------------------------------------------


async def case_track_events(t: SimpleNamespace) -> None:
    # Public by design (like the tracker): anyone may send events to B...
    ev = {"page": "/from-a", "timestamp": recent(1), "visitorId": "from-a"}
    res = await q(t, TRACK, {"i": {"websiteId": t.b.site, "events": [ev]}})
    assert res["data"]["trackEvents"]["accepted"] == 1
    # ...but a page of A's site is refused for B (Origin), and nothing becomes readable.
    res = await q(t, TRACK, {"i": {"websiteId": t.b.site, "events": [ev]}},
                  {**t.a.headers, "Origin": "https://a.example"})  # fmt: skip
    assert user_error_code(res, "trackEvents") == "FORBIDDEN"


async def case_import_events(t: SimpleNamespace) -> None:
    before = await event_count(t.pool, t.b.site)
    ev = {"page": "/x", "timestamp": recent(3)}
    res = await q(t, IMPORT, {"i": {"websiteId": t.b.site, "events": [ev]}})
    assert user_error_code(res, "importEvents") == "NOT_FOUND"
    assert await event_count(t.pool, t.b.site) == before


async def case_create_website(t: SimpleNamespace) -> None:
    res = await q(t, "mutation { createWebsite(input: {id: \"x-by-a\", domain: \"x.example\"}) "
                  "{ website { id } userErrors { code } } }")  # fmt: skip
    assert user_error_code(res, "createWebsite") == "FORBIDDEN"


async def case_update_website(t: SimpleNamespace) -> None:
    res = await q(t, "mutation($id: ID!) { updateWebsite(input: {id: $id, domain: \"evil.example\","
                  " isPublic: true}) { website { id } userErrors { code } } }", {"id": t.b.site})  # fmt: skip
    assert user_error_code(res, "updateWebsite") == "NOT_FOUND"
    row = await t.pool.fetchrow("SELECT domain, is_public FROM websites WHERE id = $1", t.b.site)
    assert row["domain"] == "b.example" and row["is_public"] is False


async def case_delete_website(t: SimpleNamespace) -> None:
    res = await q(t, "mutation($id: ID!) { deleteWebsite(input: {id: $id}) { deletedId "
                  "userErrors { code } } }", {"id": t.b.site})  # fmt: skip
    assert user_error_code(res, "deleteWebsite") == "NOT_FOUND"
    assert await t.pool.fetchval("SELECT count(*) FROM websites WHERE id = $1", t.b.site) == 1


async def case_create_funnel(t: SimpleNamespace) -> None:
    res = await q(t, CREATE_FUNNEL, {"i": {"websiteId": t.b.site, "name": "x", "steps": STEPS}})
    assert user_error_code(res, "createFunnel") == "NOT_FOUND"


async def case_update_funnel(t: SimpleNamespace) -> None:
    res = await q(t, "mutation($id: ID!) { updateFunnel(input: {id: $id, name: \"pwned\"}) "
                  "{ funnel { id } userErrors { code } } }", {"id": t.b.funnel})  # fmt: skip
    assert user_error_code(res, "updateFunnel") == "NOT_FOUND"
    name = await t.pool.fetchval("SELECT name FROM funnels WHERE id = $1::uuid", t.b.funnel)
    assert name == "F"


async def case_delete_funnel(t: SimpleNamespace) -> None:
    res = await q(t, "mutation($id: ID!) { deleteFunnel(input: {id: $id}) { deletedId "
                  "userErrors { code } } }", {"id": t.b.funnel})  # fmt: skip
    assert user_error_code(res, "deleteFunnel") == "NOT_FOUND"
    assert await t.pool.fetchval("SELECT count(*) FROM funnels WHERE id = $1::uuid", t.b.funnel)


async def case_delete_visitor_data(t: SimpleNamespace) -> None:
    before = await event_count(t.pool, t.b.site, t.b.visitor)
    res = await q(t, DELETE_VISITOR, {"i": {"websiteId": t.b.site, "visitorId": t.b.visitor}})
    assert user_error_code(res, "deleteVisitorData") == "NOT_FOUND"
    assert before > 0 and await event_count(t.pool, t.b.site, t.b.visitor) == before


async def case_anonymize_visitor_data(t: SimpleNamespace) -> None:
    before = await event_count(t.pool, t.b.site, t.b.visitor)
    res = await q(t, ANONYMIZE_VISITOR, {"i": {"websiteId": t.b.site, "visitorId": t.b.visitor}})
    assert user_error_code(res, "anonymizeVisitorData") == "NOT_FOUND"
    assert before > 0 and await event_count(t.pool, t.b.site, t.b.visitor) == before


async def case_create_api_key(t: SimpleNamespace) -> None:
    res = await q(t, CREATE_KEY, {"i": {"name": "grab", "websites": [t.b.site], "scope": "READ"}})
    assert user_error_code(res, "createApiKey") == "NOT_FOUND"
    res = await q(t, CREATE_KEY, {"i": {"name": "all", "websites": None, "scope": "READ"}})
    assert user_error_code(res, "createApiKey") == "FORBIDDEN"


async def case_revoke_api_key(t: SimpleNamespace) -> None:
    res = await q(t, REVOKE_KEY, {"i": {"id": t.b.key_id}})
    assert user_error_code(res, "revokeApiKey") == "NOT_FOUND"
    res = await q(t, "{ websites { id } }", headers={"X-API-Key": t.b.key})
    assert [w["id"] for w in res["data"]["websites"]] == [t.b.site]


async def case_realtime_subscription(t: SimpleNamespace) -> None:
    rt = t.app.state.runtime
    scope = {"type": "http", "headers": [], "client": ("198.51.100.9", 1), "app": t.app,
             "method": "POST", "path": "/graphql", "query_string": b""}  # fmt: skip
    principal = Principal("a", "admin", frozenset({t.a.site}))
    ctx = Context(Request(scope), rt, t.settings, principal)
    result = await schema.subscribe(
        "subscription($id: ID!) { realtime(websiteId: $id) { visitors } }",
        variable_values={"id": t.b.site}, context_value=ctx,
    )  # fmt: skip
    first = result if hasattr(result, "errors") else await result.__anext__()
    assert first.errors and first.errors[0].extensions["code"] == "NOT_FOUND"
    if hasattr(result, "aclose"):
        await result.aclose()


CASES: dict[str, Case] = {
    "Query.website": case_website,
    "Query.websites": case_websites,
    "Query.definitions": case_definitions,
    "Query.funnel": case_funnel,
    "Query.compareFunnels": case_compare_funnels,
    "Query.apiKeys": case_api_keys,
    "Mutation.trackEvents": case_track_events,
    "Mutation.importEvents": case_import_events,
    "Mutation.createWebsite": case_create_website,
    "Mutation.updateWebsite": case_update_website,
    "Mutation.deleteWebsite": case_delete_website,
    "Mutation.createFunnel": case_create_funnel,
    "Mutation.updateFunnel": case_update_funnel,
    "Mutation.deleteFunnel": case_delete_funnel,
    "Mutation.deleteVisitorData": case_delete_visitor_data,
    "Mutation.anonymizeVisitorData": case_anonymize_visitor_data,
    "Mutation.createApiKey": case_create_api_key,
    "Mutation.revokeApiKey": case_revoke_api_key,
    "Subscription.realtime": case_realtime_subscription,
}


async def test_every_root_field_has_a_case(t: SimpleNamespace) -> None:
    res = await gql(t.client, ROOTS, headers=t.admin)
    s = res["data"]["__schema"]
    fields = {f"{kind}.{f['name']}" for kind, key in
              (("Query", "queryType"), ("Mutation", "mutationType"),
               ("Subscription", "subscriptionType")) if s[key]
              for f in s[key]["fields"]}  # fmt: skip
    missing = sorted(fields - CASES.keys())
    assert not missing, f"root fields without an isolation case: {missing}"


@pytest.mark.parametrize("field", sorted(CASES))
async def test_isolation(t: SimpleNamespace, field: str) -> None:
    await CASES[field](t)


# --- REST --------------------------------------------------------------------------------

PUBLIC_ROUTES = {  # open by design (health, tracking doors, docs, static pages; "" = "/")
    "/health", "/ready", "/metrics", "/graphql", "/api/v1/analytics/event",
    "/api/v1/analytics/event/batch", "/api/v1/funnels/track", "/api/v1/funnels/active",
    "", "/openapi.json", "/tracker.js", "/trackers/tracker.js", "/graphiql/vendor/{name}",
}  # fmt: skip
GLOBAL_ROUTES: dict[str, set[int]] = {  # not about one tenant: a tenant gets one of these
    "/privacy/cleanup": {403}, "/privacy/retention-policies": {200},
    "/api/v1/admin/": {200, 403},  # refused, or scoped to the caller: B's ids must not appear
}  # fmt: skip


def _fill(path: str, t: SimpleNamespace) -> str | None:
    """B's ids in the route's parameters; None when the route has a parameter we do not
    know how to fill (the test then fails, asking for a case)."""
    values = {"website_id": t.b.site, "user_id": t.b.owner, "visitor_id": t.b.visitor,
              "funnel_id": t.b.funnel}  # fmt: skip
    out = path
    for name, value in values.items():
        out = out.replace("{" + name + "}", value)
    return None if "{" in out else out


def query(t: SimpleNamespace) -> dict[str, str]:
    """B's id wherever a route reads a website from the query string."""
    return {"website_id": t.b.site, "siteId": t.b.site}


def body(t: SimpleNamespace) -> dict[str, Any]:
    """A valid-looking body naming B's website and funnel."""
    return {"website_id": t.b.site, "websiteId": t.b.site, "funnel_ids": [t.b.funnel],
            "name": "x", "steps": STEPS, "is_active": True}  # fmt: skip


def _rest_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.rstrip("/") not in PUBLIC_ROUTES:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append((method, route.path))
    return found


async def test_every_rest_route_has_a_case(t: SimpleNamespace) -> None:
    unknown = [(m, p) for m, p in _rest_routes(t.app) if _fill(p, t) is None]
    assert not unknown, f"REST routes with parameters the isolation test cannot fill: {unknown}"


async def test_rest_routes_refuse_another_tenant(t: SimpleNamespace) -> None:
    checked = 0
    for method, path in _rest_routes(t.app):
        url = _fill(path, t)
        assert url is not None
        special = next((v for k, v in GLOBAL_ROUTES.items() if k in path), None)
        for headers in (t.a.headers, {"X-API-Key": t.a.key}):
            r = await t.client.request(method, url, headers=headers, params=query(t),
                                       json=body(t) if method in ("POST", "PUT") else None)  # fmt: skip
            expected = special or {403, 404}
            if r.status_code == 200 and r.headers["content-type"].startswith("text/html"):
                # A static page shell (it loads data with the viewer's credentials).
                assert all(x not in r.text for x in ("b.example", t.b.visitor, t.b.funnel))
                continue
            assert r.status_code in expected, (method, url, r.status_code, r.text)
            assert "error" in r.json() or r.status_code == 200, (method, url, r.text)
            if r.status_code == 200:  # an answer scoped to A must not mention B
                assert t.b.site not in r.text and t.b.funnel not in r.text, (method, url, r.text)
            checked += 1
    assert checked >= 16
    # Nothing of B changed.
    assert await event_count(t.pool, t.b.site, t.b.visitor) == 2
    assert await t.pool.fetchval("SELECT count(*) FROM funnels WHERE website_id = $1", t.b.site)


async def test_public_website_is_readable_not_writable_anonymously(t: SimpleNamespace) -> None:
    res = await gql(t.client, "mutation($id: ID!) { updateWebsite(input: {id: $id, isPublic: "
                    "true}) { userErrors { code } } }", {"id": t.b.site}, t.admin)  # fmt: skip
    assert res["data"]["updateWebsite"]["userErrors"] == []
    try:
        res = await gql(
            t.client,
            "query($id: ID!) { website(id: $id) { id stats(range: "
            "{preset: LAST_7_DAYS}) { summary { pageviews } } } }",
            {"id": t.b.site},
        )
        assert res["data"]["website"]["id"] == t.b.site
        assert res["data"]["website"]["stats"]["summary"]["pageviews"] >= 1
        # ... its stats, not its raw events (visitor ids): those need B's own credential
        events = "query($id: ID!) { website(id: $id) { events { nodes { visitorId } } } }"
        for headers in (None, t.a.headers):
            res = await gql(t.client, events, {"id": t.b.site}, headers)
            assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN", res
            assert t.b.visitor not in str(res)
        res = await gql(t.client, events, {"id": t.b.site}, t.b.headers)
        assert t.b.visitor in {n["visitorId"] for n in res["data"]["website"]["events"]["nodes"]}
        anon_writes = {
            "importEvents": (IMPORT, {"i": {"websiteId": t.b.site, "events": [{"page": "/"}]}}),
            "deleteVisitorData": (DELETE_VISITOR, {"i": {"websiteId": t.b.site,
                                                         "visitorId": t.b.visitor}}),
            "createFunnel": (CREATE_FUNNEL, {"i": {"websiteId": t.b.site, "name": "x",
                                                   "steps": STEPS}}),
            "updateWebsite": ("mutation($id: ID!) { updateWebsite(input: {id: $id, name: \"x\"})"
                              " { userErrors { code } } }", {"id": t.b.site}),
            "deleteWebsite": ("mutation($id: ID!) { deleteWebsite(input: {id: $id})"
                              " { userErrors { code } } }", {"id": t.b.site}),
        }  # fmt: skip
        for field, (query, variables) in anon_writes.items():
            res = await gql(t.client, query, variables)
            assert user_error_code(res, field) == "FORBIDDEN", (field, res)
        # A token for A is not the owner either: readable, not writable.
        res = await q(t, DELETE_VISITOR, {"i": {"websiteId": t.b.site, "visitorId": t.b.visitor}})
        assert user_error_code(res, "deleteVisitorData") == "FORBIDDEN"
        r = await t.client.get(f"/api/v1/privacy/visitor/{t.b.site}/{t.b.visitor}/export")
        assert r.status_code == 401
        r = await t.client.get(f"/api/v1/privacy/visitor/{t.b.site}/{t.b.visitor}/export",
                               headers=t.a.headers)  # fmt: skip
        assert r.status_code == 403
        assert await event_count(t.pool, t.b.site, t.b.visitor) == 2
    finally:
        await gql(t.client, "mutation($id: ID!) { updateWebsite(input: {id: $id, isPublic: "
                  "false}) { userErrors { code } } }", {"id": t.b.site}, t.admin)  # fmt: skip
