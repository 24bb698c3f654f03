"""Credentials: API keys (create, use, revoke), what a key may grant, and 401s."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import jwt
import pytest

from graph.auth import jwt_key
from graph.settings import Settings
from resolvers.api_keys import cache_of
from tests.conftest import API_KEY, gql, make_website, token
from tests.security_support import (
    CREATE_KEY,
    IMPORT,
    REVOKE_KEY,
    bearer,
    other_app,
    recent,
)

WEBSITES = "{ websites { id } }"


async def create_key(client: httpx.AsyncClient, headers: dict[str, str], name: str,
                     websites: list[str] | None, scope: str) -> dict[str, Any]:  # fmt: skip
    res = await gql(client, CREATE_KEY, {"i": {"name": name, "websites": websites,
                                               "scope": scope}}, headers)  # fmt: skip
    payload: dict[str, Any] = res["data"]["createApiKey"]
    return payload


async def test_api_key_lifecycle(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: Any
) -> None:
    site = await make_website(client, admin_headers)
    created = await create_key(client, admin_headers, "reporting", [site], "READ")
    assert created["userErrors"] == []
    key = created["key"]
    assert key.startswith("ffk_") and len(key) >= 40
    assert created["apiKey"]["websites"] == [site] and created["apiKey"]["scope"] == "READ"
    # Stored hashed, never in plain text.
    row = await pool.fetchrow("SELECT key_hash FROM api_keys WHERE id = $1::uuid",
                              created["apiKey"]["id"])  # fmt: skip
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert await pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = $1", key) == 0
    # Used as X-API-Key or as a bearer token: sees exactly its website, read only.
    for headers in ({"X-API-Key": key}, bearer(key)):
        res = await gql(client, WEBSITES, headers=headers)
        assert [w["id"] for w in res["data"]["websites"]] == [site]
    res = await gql(client, IMPORT, {"i": {"websiteId": site, "events": [
        {"page": "/", "timestamp": recent()}]}}, {"X-API-Key": key})  # fmt: skip
    assert res["data"]["importEvents"]["userErrors"][0]["code"] == "FORBIDDEN"
    # Listed (without its secret), then revoked: refused at once, audited.
    res = await gql(client, "{ apiKeys { id name revokedAt } }", headers=admin_headers)
    assert {"id": created["apiKey"]["id"], "name": "reporting", "revokedAt": None} in res[
        "data"]["apiKeys"]  # fmt: skip
    res = await gql(client, REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, admin_headers)
    assert res["data"]["revokeApiKey"] == {"deletedId": created["apiKey"]["id"], "userErrors": []}
    r = await client.post("/graphql", json={"query": WEBSITES}, headers={"X-API-Key": key})
    assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    audit = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'revoke_api_key' "
                                "AND detail->>'api_key_id' = $1", created["apiKey"]["id"])  # fmt: skip
    assert audit == 1
    # Revoking twice is fine; an unknown id is not found.
    res = await gql(client, REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, admin_headers)
    assert res["data"]["revokeApiKey"]["userErrors"] == []
    res = await gql(client, REVOKE_KEY, {"i": {"id": "not-a-uuid"}}, admin_headers)
    assert res["data"]["revokeApiKey"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_revocation_reaches_other_processes_within_the_cache_ttl(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    site = await make_website(client, admin_headers)
    created = await create_key(client, admin_headers, "shared", [site], "READ")
    key = created["key"]
    async with other_app(settings, "198.51.100.21") as (other, other_application):
        cache = cache_of(other_application.state.runtime)
        cache.ttl = 0.5  # the production TTL is 5 s; same mechanism, quicker test
        res = await gql(other, WEBSITES, headers={"X-API-Key": key})
        assert [w["id"] for w in res["data"]["websites"]] == [site]  # now cached there
        await gql(client, REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, admin_headers)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = await other.post("/graphql", json={"query": WEBSITES}, headers={"X-API-Key": key})
            if r.status_code == 401:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 401


async def test_keys_grant_no_more_than_the_caller_holds(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    a = await make_website(client, admin_headers)
    b = await make_website(client, admin_headers)
    admin_a = bearer(token(settings, [a], "admin"))
    ok = await create_key(client, admin_a, "ci", [a], "WRITE")
    assert ok["userErrors"] == [] and ok["apiKey"]["websites"] == [a]
    refused = {
        "other tenant": (admin_a, [b], "READ", "NOT_FOUND"),
        "unknown site": (admin_a, ["nope"], "READ", "NOT_FOUND"),
        "all websites": (admin_a, None, "READ", "FORBIDDEN"),
        "not admin": (bearer(token(settings, [a], "write")), [a], "READ", "FORBIDDEN"),
        "anonymous": ({}, [a], "READ", "FORBIDDEN"),
        "empty list": (admin_a, [], "READ", "INVALID"),
    }
    for why, (headers, websites, scope, code) in refused.items():
        res = await create_key(client, headers, "k", websites, scope)
        assert res["key"] is None and res["userErrors"][0]["code"] == code, why
    res = await create_key(client, admin_a, " " * 3, [a], "READ")
    assert res["userErrors"][0]["field"] == ["name"]
    # A key created by an admin of A cannot be revoked by an admin of B.
    admin_b = bearer(token(settings, [b], "admin"))
    res = await gql(client, REVOKE_KEY, {"i": {"id": ok["apiKey"]["id"]}}, admin_b)
    assert res["data"]["revokeApiKey"]["userErrors"][0]["code"] == "NOT_FOUND"
    # A write key of A can import into A.
    res = await gql(client, IMPORT, {"i": {"websiteId": a, "events": [
        {"page": "/", "timestamp": recent()}]}}, {"X-API-Key": ok["key"]})  # fmt: skip
    assert res["data"]["importEvents"]["accepted"] == 1


async def test_invalid_credentials_are_401(client: httpx.AsyncClient, settings: Settings) -> None:
    expired = jwt.encode({"sub": "x", "scope": "admin", "websites": "*",
                          "exp": int(time.time()) - 120}, jwt_key(settings), algorithm="HS256")  # fmt: skip
    forged = jwt.encode({"sub": "x", "scope": "admin", "websites": "*",
                         "exp": int(time.time()) + 60}, "another-key-0123456789-0123456789-abcdef", algorithm="HS256")  # fmt: skip
    cases = [
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer ffk_unknownkeyunknownkeyunknownkey"},
        {"X-API-Key": "wrong"},
        {"X-API-Key": "ffk_unknownkeyunknownkeyunknownkey"},
    ]
    for headers in cases:
        r = await client.post("/graphql", json={"query": WEBSITES}, headers=headers)
        assert r.status_code == 401, headers
        r = await client.get("/api/v1/privacy/retention-policies", headers=headers)
        assert r.status_code == 401 and "error" in r.json(), headers
    r = await client.get("/api/v1/privacy/retention-policies")
    assert r.status_code == 401 and r.json() == {"error": "Missing API key"}
    r = await client.get("/api/v1/privacy/retention-policies", headers={"X-API-Key": API_KEY})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "client_ip,headers,prefilled",
    [
        ("127.0.0.1", {}, True),  # the developer's own browser
        ("::1", {}, True),
        ("192.0.2.50", {}, False),  # another machine, HOST=0.0.0.0
        ("127.0.0.1", {"X-Forwarded-For": "192.0.2.50"}, False),  # through a local proxy
        ("127.0.0.1", {"Host": "localhost:3002", "Sec-Fetch-Site": "none"}, True),  # typed in
        ("127.0.0.1", {"Origin": "https://evil.example"}, False),  # another site's fetch()
        ("127.0.0.1", {"Sec-Fetch-Site": "cross-site"}, False),
        ("127.0.0.1", {"Host": "rebound.evil.example"}, False),  # DNS rebinding
    ],
)
async def test_pages_prefill_an_admin_token_only_for_this_machine(
    settings: Settings, client_ip: str, headers: dict[str, str], prefilled: bool
) -> None:
    async with other_app(settings, client_ip, environment="development") as (c, _):
        for path in ("/", "/graphql"):
            page = await c.get(path, headers={"Accept": "text/html", "Host": "127.0.0.1:3002",
                                              **headers})  # fmt: skip
            assert page.status_code == 200, (path, page.status_code)
            assert ("eyJ" in page.text) is prefilled, (path, client_ip, headers)
